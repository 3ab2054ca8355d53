"""The practice: login, the practitioners' pages, the closing page, the patient's access to documents."""
