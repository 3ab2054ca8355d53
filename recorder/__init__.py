"""Recording of consultations: a subscriber of a room like any participant; mux, composite."""
from .recorder import Recorder

__all__ = ["Recorder"]
