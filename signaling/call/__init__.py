"""The call: its WebSocket protocol, waiting room, chat, whiteboard, recording control, files, TURN, statistics."""
