"""A recording's manifest: tracks, roles, times and state, in one JSON file written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ManifestError

MANIFEST = "manifest.json"
State = Literal["recording", "stopped", "composed", "failed"]
STATES: tuple[str, ...] = ("recording", "stopped", "composed", "failed")


@dataclass
class Track:
    """One producer's frames in one Matroska (WebM or .mkv) file (a reload gives a new track)."""

    file: str
    role: str  # "practitioner" / "patient"
    source: str  # "mic", "camera", "screen"
    kind: str  # "audio" / "video"
    codec: str  # "vp8", "h264", "opus"
    # seconds from the recording's start to this track's first frame: its capture time
    # from the sender's RTCP sender reports (clock "sender"), else its arrival ("arrival")
    start: float
    clock: str = "arrival"
    # seconds from the recording's start to the arrival of this track's first frame
    arrived: float | None = None


@dataclass
class Event:
    """What a side said it sends, from `t` seconds on (a camera turned off, a screen shared)."""

    t: float
    role: str
    mic: bool
    camera: bool
    screen: bool


@dataclass
class Manifest:
    id: str
    consultation_id: str
    started_at: str  # ISO-8601 UTC wall-clock time of the first recorded instant
    state: str = "recording"
    # seconds recorded, known once stopped (after a crash: read from the tracks)
    duration: float | None = None
    tracks: list[Track] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # the composed file's name in the recording folder, once composed (None once
    # moved into the document store: see document_id)
    output: str | None = None
    # what the composition was stored as (the document store's id), when stored
    document_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        try:
            tracks = [Track(**t) for t in data.pop("tracks")]
            events = [Event(**e) for e in data.pop("events")]
            manifest = cls(**data, tracks=tracks, events=events)
        except (TypeError, KeyError, AttributeError) as exc:
            raise ManifestError(f"not a recording manifest: {exc}") from None
        if manifest.state not in STATES:
            raise ManifestError(f"unknown recording state {manifest.state!r}")
        return manifest


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically: temporary file, fsync, rename (blocking: call off the loop)."""
    tmp = directory / f".{MANIFEST}.tmp"
    data = json.dumps(manifest.as_json(), indent=1).encode()
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MANIFEST)
    _fsync_dir(directory)


def read_manifest(directory: Path) -> Manifest:
    try:
        data = json.loads((directory / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"no manifest in {directory.name}") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"unreadable manifest in {directory.name}: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"unreadable manifest in {directory.name}")
    return Manifest.from_json(data)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
