"""Recorder: a subscriber of a room like any participant, writing every track's encoded frames.

It subscribes to each producer as a `PacketSubscriber`, like a consumer, and
assembles the frames itself (recorder/depacketize.py): the forwarding path
assembles nothing.  Frames are placed by the publisher's capture clock, from
its RTCP sender reports (`Producer.sender_report`): each sender's NTP clock is
mapped once onto the recording's timeline (at the first frame it can time), so
its audio and video line up as captured whatever delayed either on the way.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sealing import Keyring
from sfu import Participant, Producer, Room
from sfu.frames import AUDIO_TIME_BASE, VIDEO_TIME_BASE
from sfu.packet import Packet

from .depacketize import Depacketizer
from .manifest import Event, Manifest
from .writer import CODECS, DiskWriter, TrackKey

logger = logging.getLogger(__name__)
VIDEO_CLOCK, AUDIO_CLOCK = 90000, 48000


class Recorder:
    """Takes every producer of a room (and of the rooms that replace it) while it runs.

    The media path pays a reorder-buffer insert per packet and one queue put
    per frame; muxing happens in the `DiskWriter` thread.  `stop()` detaches at once; `wait_closed()` waits
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
        self._subs: dict[str, _Subscription] = {}  # by producer id
        self._producers: dict[str, Producer] = {}  # consumed: recorded, or waiting for their codec
        self._waiting: dict[str, tuple[str, str]] = {}  # producer id -> (role, source): codec not known yet
        self._tracks: dict[str, dict[str, bool]] = {}
        # each sender's wallclock (NTP seconds) to the recording's timeline: seconds to add
        self._offsets: dict[tuple[str, int], float] = {}

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
        for producer in self._producers.values():
            producer.remove_consumer(self)
        self._producers.clear()
        self._subs.clear()
        self._waiting.clear()

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
            if producer.id in self._producers or producer.closed or producer.kind not in CODECS:
                continue
            self._producers[producer.id] = producer
            producer.add_consumer(self)
            producer.once("close", functools.partial(self._forget, producer.id))
            if producer.codec:
                self._subscribe(producer, participant.role, source)
            else:  # a new peer connection, not connected yet: its codec is known by its first packet
                self._waiting[producer.id] = (participant.role, source)

    def _subscribe(self, producer: Producer, role: str, source: str) -> _Subscription | None:
        codec = producer.codec
        if codec not in CODECS[producer.kind]:
            logger.warning("%r does not record %s: codec %s", self, producer.id, codec or "unknown")
            return None
        key = TrackKey(producer.id, role, source, producer.kind, codec)
        clock_rate = VIDEO_CLOCK if producer.kind == "video" else AUDIO_CLOCK
        # one sender's tracks share its wallclock: one offset per transport (bundle)
        sender = (role, id(producer.receiver.transport))
        sub = self._subs[producer.id] = _Subscription(key, Depacketizer(codec, clock_rate), sender)
        if producer.kind == "video":
            producer.request_keyframe()  # a video file starts on a keyframe
        return sub

    def _forget(self, producer_id: str) -> None:
        self._subs.pop(producer_id, None)
        self._producers.pop(producer_id, None)
        self._waiting.pop(producer_id, None)

    # ------------------------------------------------------------ PacketSubscriber

    def on_packet(self, producer: Producer, packet: Packet, key: bool, now: float) -> None:
        """A packet of a recorded producer: frames are assembled here, then queued for the disk thread."""
        sub = self._subs.get(producer.id)
        if sub is None:
            waiting = self._waiting.pop(producer.id, None)
            if waiting is None or (sub := self._subscribe(producer, *waiting)) is None:
                return
        red = producer.kind == "audio" and producer.codec_name(packet.payload_type) == "red"
        frames = sub.depacketizer.add(packet, red)
        if sub.depacketizer.need_keyframe:
            sub.depacketizer.need_keyframe = False
            producer.request_keyframe()  # throttled by the producer
        if not frames:
            return
        arrival = time.monotonic() - self._t0
        report = producer.sender_report
        for frame in frames:
            capture = None
            if report is not None and report.ssrc == packet.ssrc:
                wallclock = report.wallclock(frame.timestamp)
                offset = self._offsets.get(sub.sender)
                if offset is None:
                    offset = self._offsets[sub.sender] = arrival - wallclock
                capture = wallclock + offset
            time_base = VIDEO_TIME_BASE if sub.key.kind == "video" else AUDIO_TIME_BASE
            if not self._writer.frame(sub.key, frame.data, frame.timestamp, time_base, frame.keyframe, arrival,
                                      capture):
                if sub.key.kind == "video":
                    producer.request_keyframe()

    def unbind(self, producer: Producer) -> None:
        self._forget(producer.id)


@dataclass(slots=True)
class _Subscription:
    key: TrackKey
    depacketizer: Depacketizer
    sender: tuple[str, int]
