"""ConnectionProbe: a short-lived peer connection that measures a browser's path to us.

The browser offers one data channel, unordered with maxRetransmits 0, so what
it measures is what media would get (loss is not hidden by retransmission).
Over it (docs/connection-test.md):

- text `{"t":"ping","n":N}` is echoed at once as `{"t":"pong","n":N}`;
- binary packets (4-byte big-endian sequence number + padding) are counted;
  `{"t":"up-done","sent":N}` is answered, after a short grace period for late
  packets, with `{"t":"up-result","received":K,"bytes":B,"kbps":R}`;
- `{"t":"down"}` starts a paced download (`DOWN_PACKETS` binary packets of
  `PACKET_BYTES`, one every `DOWN_INTERVAL`), then `{"t":"down-done","sent":N}`;
- `{"t":"bye"}` closes the probe.

The probe closes itself after `timeout` seconds whatever happens.
`drop_rate` drops that share of the measured packets both ways (pings, pongs,
load packets; never the control messages): for tests and troubleshooting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import struct
import time
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from .errors import ClosedError, MediaError

logger = logging.getLogger(__name__)

PACKET_BYTES = 1000
DOWN_INTERVAL = 0.008  # 1000 bytes every 8 ms: 1 Mbit/s
DOWN_PACKETS = 250  # 2 s
MAX_UP_PACKETS = 4096  # sequence numbers beyond are ignored: the count stays bounded
UP_GRACE = 0.25  # seconds to wait for late upload packets after "up-done"
_SEQ = struct.Struct("!I")


class ConnectionProbe:
    """One connection test of one browser tab; `close()` is safe to call twice."""

    def __init__(self, id: str, *, timeout: float = 15.0, drop_rate: float = 0.0,
                 rng: random.Random | None = None) -> None:
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.id = id
        self.closed = False
        self.drop_rate = drop_rate
        self._timeout = timeout
        self._rng = rng or random.Random()
        self._pc: RTCPeerConnection | None = None
        self._channel: RTCDataChannel | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        # upload: distinct sequence numbers received, bytes, first and last arrival
        self._up_seen: set[int] = set()
        self._up_bytes = 0
        self._up_first = 0.0
        self._up_last = 0.0
        self._up_result: dict[str, Any] | None = None
        self._up_done_started = False
        self._down_started = False

    def __repr__(self) -> str:
        return f"ConnectionProbe({self.id})"

    @property
    def pc(self) -> RTCPeerConnection | None:
        return self._pc

    async def answer(self, sdp: str) -> str:
        """Answer the browser's offer (one data channel, no media); returns the answer SDP."""
        if self.closed:
            raise ClosedError(f"{self!r} is closed")
        if self._pc is not None:
            raise MediaError(f"{self!r} already answered an offer")
        kinds = [line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")]
        if kinds != ["application"]:
            raise MediaError(f"a probe offer must carry one application (data channel) section, got {kinds}")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._on_timeout)
        pc.on("datachannel", self._on_channel)
        pc.on("connectionstatechange", lambda: self._on_connection_state(pc))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError, InvalidStateError... on a bad SDP
            self.close()
            raise MediaError(f"the probe offer could not be answered: {exc}") from None
        if self.closed or pc.localDescription is None:
            raise ClosedError(f"{self!r} was closed during negotiation")
        logger.info("%r answered (drop rate %.2f)", self, self.drop_rate)
        return pc.localDescription.sdp

    def close(self) -> None:
        """Close the peer connection and stop every task; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        pc, self._pc, self._channel = self._pc, None, None
        if pc is not None:
            self._spawn(pc.close(), keep=False)
        logger.info("%r closed", self)

    async def wait_closed(self) -> None:
        """Wait until the peer connection being closed is closed."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # internals

    def _spawn(self, coro: Any, keep: bool = True) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        if keep:  # kept tasks are cancelled by close(); the closing of the pc is not
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _on_timeout(self) -> None:
        logger.info("%r timed out after %.0f s", self, self._timeout)
        self._timer = None
        self.close()

    def _on_connection_state(self, pc: RTCPeerConnection) -> None:
        if pc is self._pc and pc.connectionState in ("failed", "closed"):
            self.close()

    def _on_channel(self, channel: RTCDataChannel) -> None:
        if self._channel is not None or self.closed:
            return  # one channel per probe
        self._channel = channel
        channel.on("message", self._on_message)
        channel.on("close", self.close)

    def _drop(self) -> bool:
        return self.drop_rate > 0.0 and self._rng.random() < self.drop_rate

    def _send(self, data: str | bytes) -> None:
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(data)

    def _on_message(self, data: str | bytes) -> None:
        if self.closed:
            return
        if isinstance(data, bytes):
            self._on_upload_packet(data)
            return
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("t")
        if kind == "ping":
            n = msg.get("n")
            if isinstance(n, int) and not self._drop() and not self._drop():  # lost on the way in, or out
                self._send(json.dumps({"t": "pong", "n": n}))
        elif kind == "up-done":
            sent = msg.get("sent")
            if self._up_result is not None:
                self._send(json.dumps(self._up_result))
            elif not self._up_done_started and isinstance(sent, int):
                self._up_done_started = True
                self._spawn(self._finish_upload())
        elif kind == "down":
            if not self._down_started:
                self._down_started = True
                self._spawn(self._download())
        elif kind == "bye":
            self.close()

    def _on_upload_packet(self, data: bytes) -> None:
        if len(data) < _SEQ.size or self._up_result is not None or self._drop():
            return
        (seq,) = _SEQ.unpack_from(data)
        if seq >= MAX_UP_PACKETS or seq in self._up_seen:
            return
        now = time.monotonic()
        if not self._up_seen:
            self._up_first = now
        self._up_last = now
        self._up_seen.add(seq)
        self._up_bytes += len(data)

    async def _finish_upload(self) -> None:
        await asyncio.sleep(UP_GRACE)  # unordered: a few packets may still be on their way
        received = len(self._up_seen)
        # n packets span n-1 intervals; one more interval counts the last packet's own time
        span = self._up_last - self._up_first
        if received > 1:
            span += span / (received - 1)
        kbps = round(self._up_bytes * 8 / span / 1000, 1) if span > 0 else 0.0
        self._up_result = {"t": "up-result", "received": received, "bytes": self._up_bytes, "kbps": kbps}
        self._send(json.dumps(self._up_result))

    async def _download(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        padding = bytes(PACKET_BYTES - _SEQ.size)
        for seq in range(DOWN_PACKETS):
            # paced against the clock, not against the previous send: no drift
            delay = start + seq * DOWN_INTERVAL - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self._drop():
                self._send(_SEQ.pack(seq) + padding)
        await asyncio.sleep(0.05)
        # control messages are small and repeated: a lost one does not fail the test
        for _ in range(3):
            self._send(json.dumps({"t": "down-done", "sent": DOWN_PACKETS}))
            await asyncio.sleep(0.1)

