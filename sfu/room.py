"""Room: one live consultation; routes every producer to every other participant."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pyee.asyncio import AsyncIOEventEmitter

from .errors import ClosedError
from .options import SfuOptions
from .participant import Participant

logger = logging.getLogger(__name__)


class Room(AsyncIOEventEmitter):
    """Owns participants; `close()` cascades to them.  Emits "close" once."""

    def __init__(self, id: str, options: SfuOptions) -> None:
        super().__init__()
        self.id = id
        self.closed = False
        self._options = options
        self._participants: dict[str, Participant] = {}
        self._departed: list[Participant] = []  # closed, maybe still closing media
        # told of every participant's new producers (the recorder)
        self._observers: list[Callable[[Participant], None]] = []

    def __repr__(self) -> str:
        return f"Room({self.id})"

    @property
    def participants(self) -> tuple[Participant, ...]:
        return tuple(self._participants.values())

    def add_participant(self, id: str, role: str) -> Participant:
        if self.closed:
            raise ClosedError(f"{self!r} is closed")
        if id in self._participants:
            raise ValueError(f"{self!r} already has participant {id}")
        participant = Participant(id, role, self._options)
        self._participants[id] = participant
        participant.on("media", self._on_media)
        participant.once("close", lambda: self._remove(participant))
        logger.info("%r + %r", self, participant)
        return participant

    def add_observer(self, observer: Callable[[Participant], None]) -> None:
        """Call `observer(participant)` now for each participant and whenever one gets new producers."""
        if observer not in self._observers:
            self._observers.append(observer)
            for participant in list(self._participants.values()):
                observer(participant)

    def remove_observer(self, observer: Callable[[Participant], None]) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def _on_media(self, participant: Participant) -> None:
        for observer in list(self._observers):
            observer(participant)
        # a participant has a new peer connection: wire it both ways
        for other in self._participants.values():
            if other is participant:
                continue
            for source, producer in participant.producers.items():
                if source in other.consumers:
                    other.consumers[source].bind(producer)
            for source, producer in other.producers.items():
                if source in participant.consumers:
                    participant.consumers[source].bind(producer)

    def _remove(self, participant: Participant) -> None:
        if self._participants.pop(participant.id, None) is not None:
            # kept only while its media is still closing (a long call with many reloads would grow it for ever)
            self._departed = [p for p in self._departed if p.closing]
            self._departed.append(participant)
            logger.info("%r - %r", self, participant)

    def close(self) -> None:
        """Close every participant; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._observers.clear()
        for participant in list(self._participants.values()):
            participant.close()
        self.emit("close")

    async def wait_closed(self) -> None:
        """Wait until every participant's peer connection has closed."""
        everyone = [*self._participants.values(), *self._departed]
        await asyncio.gather(*(p.wait_closed() for p in everyone), return_exceptions=True)
        self._departed = [p for p in self._departed if p.closing]
