"""The SFU: rooms, participants, producers and consumers forwarding encoded media."""

from .consumer import Consumer
from .errors import ClosedError, MediaError, SfuError
from .ice import IcePolicy
from .options import SfuOptions
from .participant import Participant
from .probe import ConnectionProbe
from .producer import Producer
from .room import Room

__all__ = ["ClosedError", "ConnectionProbe", "Consumer", "IcePolicy", "MediaError", "Participant",
           "Producer", "Room", "SfuError", "SfuOptions"]
