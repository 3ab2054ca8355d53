"""Recording of consultations: a subscriber of a room like any participant (later issue)."""
