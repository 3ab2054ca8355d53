"""Recorder: a subscriber of a room like any participant, writing every track's encoded frames."""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import time
from pathlib import Path

from sealing import Keyring
from sfu import Participant, Producer, Room
from sfu.frames import EncodedFrame

from .manifest import Event, Manifest
from .writer import CODECS, DiskWriter, TrackKey

logger = logging.getLogger(__name__)


class Recorder:
    """Takes every producer of a room (and of the rooms that replace it) while it runs.

    The media path pays one queue put per frame; muxing happens in the
    `DiskWriter` thread.  `stop()` detaches at once; `wait_closed()` waits
    until the files and the manifest are complete.
    """

    def __init__(self, id: str, consultation_id: str, directory: Path, *, max_queue_frames: int = 3000,
                 keyring: Keyring | None = None) -> None:
        self.id = id
        self.consultation_id = consultation_id
        self.directory = directory
        self.stopped = False
        self._t0 = time.monotonic()
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        self.manifest = Manifest(id=id, consultation_id=consultation_id, started_at=started)
        self._writer = DiskWriter(directory, self.manifest, max_queue_frames, keyring)
        self._room: Room | None = None
        self._sinks: dict[str, tuple[Producer, functools.partial[None]]] = {}
        self._tracks: dict[str, dict[str, bool]] = {}
        self._keyless: set[str] = set()  # video producers whose first keyframe we wait for

    def __repr__(self) -> str:
        return f"Recorder({self.id})"

    @property
    def dropped(self) -> int:
        return self._writer.dropped

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def start(self) -> None:
        """Start the disk thread (it creates the folder and the manifest)."""
        self._t0 = time.monotonic()
        self._writer.start()
        logger.info("%r started for consultation %s", self, self.consultation_id)

    def attach(self, room: Room) -> None:
        """Subscribe to `room`'s producers, present and future."""
        if self.stopped or room is self._room:
            return
        self.detach()
        self._room = room
        room.add_observer(self._on_participant)

    def detach(self) -> None:
        if self._room is not None:
            self._room.remove_observer(self._on_participant)
            self._room = None
        for producer, sink in self._sinks.values():
            producer.remove_frame_sink(sink)
        self._sinks.clear()

    def note_tracks(self, role: str, tracks: dict[str, bool]) -> None:
        """What a side sends (mic muted, camera off, screen shared), for the compositor."""
        if self.stopped or self._tracks.get(role) == tracks:
            return
        self._tracks[role] = dict(tracks)
        self._writer.event(Event(t=round(self.elapsed, 4), role=role, mic=tracks["mic"],
                                 camera=tracks["camera"], screen=tracks["screen"]))

    def stop(self) -> None:
        """Stop taking frames; the disk thread finishes the files.  Safe to call twice."""
        if self.stopped:
            return
        self.stopped = True
        self.detach()
        self._writer.stop(self.elapsed)

    async def wait_closed(self) -> Manifest:
        """Wait (in a thread) until the files and manifest are complete."""
        await asyncio.to_thread(self._writer.join)
        return self.manifest

    def _on_participant(self, participant: Participant) -> None:
        for source, producer in participant.producers.items():
            if producer.id in self._sinks or producer.closed or producer.kind not in CODECS:
                continue
            codec = _codec(producer)
            if codec != CODECS[producer.kind]:
                # the WebM writer knows VP8 and Opus only (the default codecs)
                logger.warning("%r does not record %s: codec %s", self, producer.id, codec or "unknown")
                continue
            key = TrackKey(producer.id, participant.role, source, producer.kind)
            sink = functools.partial(self._on_frame, key, producer)
            producer.add_frame_sink(sink)
            producer.once("close", functools.partial(self._forget, producer.id))
            self._sinks[producer.id] = (producer, sink)
            if producer.kind == "video":
                self._keyless.add(producer.id)
                producer.request_keyframe()  # a video file starts on a keyframe

    def _forget(self, producer_id: str) -> None:
        self._sinks.pop(producer_id, None)
        self._keyless.discard(producer_id)

    def _on_frame(self, key: TrackKey, producer: Producer, frame: EncodedFrame) -> None:
        # on the media path: one clock read and one queue put
        if key.producer_id in self._keyless:
            if not frame.keyframe:
                producer.request_keyframe()  # at most once per interval
                return
            self._keyless.discard(key.producer_id)
        arrival = time.monotonic() - self._t0
        if not self._writer.frame(key, frame.data, frame.pts, frame.time_base, frame.keyframe, arrival):
            if key.kind == "video":
                producer.request_keyframe()


def _codec(producer: Producer) -> str:
    """The negotiated codec of a producer's receiver ("vp8", "opus", "h264"...)."""
    # RED (sfu/red.py) only wraps Opus: the producer gives frame sinks the Opus inside
    return producer.codec
