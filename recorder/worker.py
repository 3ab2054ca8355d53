"""A media worker that also records: the consultation's `Recorder` runs in the worker holding its room.

Started by `sfu.remote.WorkerPool` as `python -m recorder.worker FD CONFIG`
when the server records (signaling/app.py); it is `sfu.worker.MediaWorker`
plus these lines on the same channel (driven by `recorder.remote.RemoteRecorder`):

    {"op": "record", "recording": id, "consultation": id, "folder": path, "room": id,
     "tracks": {role: {"mic": bool, "camera": bool, "screen": bool}}}
    {"op": "record-tracks", "recording": id, "role": role, "tracks": {...}}
    {"op": "record-attach", "recording": id, "room": id}   (the consultation's room was made again)
    {"op": "record-stop", "recording": id}
    event {"event": "recording-closed", "recording": id, "manifest": {...} | null, "dropped": n,
           "error": text | null}   (its files and manifest are complete, or it could not start)

The recorder is the one of the server's own process (same files, same manifest,
same sealing): the worker opens the key file named in its start configuration
(`key_file`, a path) with `sealing.Keyring`, as the composing process does; no
key material crosses the channel or a command line.  When the channel closes
(the server stops), running recorders stop and their files are completed before
the worker exits; the server composes them at its next start.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from sealing import Keyring
from sfu.worker import MediaWorker, main

from .recorder import Recorder

logger = logging.getLogger(__name__)


class RecordingWorker(MediaWorker):
    """A media worker whose rooms can be recorded."""

    keyring: Keyring | None = None
    recorders: dict[str, Recorder]

    def configure(self, config: dict[str, Any]) -> None:
        self.recorders = {}
        # the server's key file (re-read when it changes, like the server's key ring)
        key_file = config.get("key_file")
        self.keyring = Keyring(Path(key_file)) if key_file else None

    def handle_other(self, op: Any, message: dict[str, Any]) -> None:
        if op == "record":
            self._record(message)
        elif op == "record-tracks":
            recorder = self.recorders.get(message["recording"])
            if recorder is not None:
                recorder.note_tracks(message["role"], message["tracks"])
        elif op == "record-attach":
            recorder = self.recorders.get(message["recording"])
            if recorder is not None:
                recorder.attach(self.room(message["room"]))
        elif op == "record-stop":
            recorder = self.recorders.pop(message["recording"], None)
            if recorder is not None:
                recorder.stop()
                self.spawn(self._closed(recorder))
        else:
            super().handle_other(op, message)

    def _record(self, message: dict[str, Any]) -> None:
        """Start a recorder on a room of this worker, as `RecordingControl` does in the server's process."""
        recording_id = message["recording"]
        try:
            recorder = Recorder(recording_id, message["consultation"], Path(message["folder"]),
                                keyring=self.keyring)
            recorder.start()
        except Exception as exc:
            logger.exception("Recording(%s) could not start", recording_id)
            self.send({"event": "recording-closed", "recording": recording_id, "manifest": None, "dropped": 0,
                       "error": type(exc).__name__})
            return
        self.recorders[recording_id] = recorder
        recorder.attach(self.room(message["room"]))
        for role, tracks in message.get("tracks", {}).items():
            recorder.note_tracks(role, tracks)

    async def _closed(self, recorder: Recorder) -> None:
        """Tell the server once a stopped recorder's files and manifest are complete."""
        error = None
        manifest: dict[str, Any] | None = None
        try:
            manifest = (await recorder.wait_closed()).as_json()
        except Exception as exc:
            logger.exception("%r did not close cleanly", recorder)
            error = type(exc).__name__
        self.send({"event": "recording-closed", "recording": recorder.id, "manifest": manifest,
                   "dropped": recorder.dropped, "error": error})

    async def close(self) -> None:
        # the server is going away: recordings stop with complete files (composed at its next start)
        recorders = list(self.recorders.values())
        self.recorders.clear()
        for recorder in recorders:
            recorder.stop()
        await asyncio.gather(*(r.wait_closed() for r in recorders), return_exceptions=True)
        await super().close()


if __name__ == "__main__":
    main(sys.argv, RecordingWorker)
