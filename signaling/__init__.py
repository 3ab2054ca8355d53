"""Signaling: HTTP routes, the WebSocket protocol, the waiting room; wires the packages."""
