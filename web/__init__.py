"""The browser app: static files served by signaling (this file makes them package data)."""
