"""Baseline server: what an aiortc user gets by default, aiortc's `MediaRelay` (decode + re-encode).

For each 1:1 room two peers POST their offer (audio + video, sendrecv) to ``/offer``
as ``{"room": R, "side": 0|1, "sdp": "..."}``.  The server keeps each request open
until both sides of the room have arrived, then adds to each peer connection the
other side's received tracks through ``MediaRelay().subscribe(track)`` and answers.
aiortc decodes every received frame (decoder thread) and encodes it again for the
other side's sender: a re-encoding relay, nothing like our SFU's frame forwarding.

    relay_baseline.py --port 8090 --ip 127.0.0.2      # GET /healthz answers "ok"

Loopback only: HTTP on 127.0.0.1, ICE on `--ip` (one address) in `--ports`.  The
process exits after `--lifetime` s (a guard; the benchmark stops it by PID before).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sfu.ice import IcePolicy  # noqa: E402

logger = logging.getLogger("relay_baseline")


class Side:
    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.tracks: list[MediaStreamTrack] = []


class RelayServer:
    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.rooms: dict[int, dict[int, Side]] = {}
        self.arrived: dict[int, asyncio.Event] = {}
        self.pcs: set[RTCPeerConnection] = set()

    async def offer(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        room, side, sdp = int(body["room"]), int(body["side"]), str(body["sdp"])
        if side not in (0, 1):
            raise web.HTTPBadRequest(text="side must be 0 or 1")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.add(pc)
        me = Side(pc)
        pc.on("track", me.tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        sides = self.rooms.setdefault(room, {})
        old = sides.get(side)
        if old is not None:
            await old.pc.close()
        sides[side] = me
        event = self.arrived.setdefault(room, asyncio.Event())
        if len(sides) == 2:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), 30)
        except asyncio.TimeoutError:
            raise web.HTTPGatewayTimeout(text="the other side did not arrive") from None
        other = sides[1 - side]
        for track in other.tracks:
            pc.addTrack(self.relay.subscribe(track))  # buffered: no frame dropped before the encoder
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp, "type": "answer"})

    async def close(self, _app: web.Application) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--ip", default="127.0.0.2", help="the only ICE address")
    p.add_argument("--ports", default="41000-41999")
    p.add_argument("--lifetime", type=float, default=900.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lo, hi = (int(x) for x in args.ports.split("-"))
    IcePolicy(addresses=[args.ip], port_min=lo, port_max=hi).install()
    server = RelayServer()
    app = web.Application()
    app.router.add_post("/offer", server.offer)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(server.close)

    async def guard(_app: web.Application) -> Any:
        task = asyncio.get_running_loop().call_later(args.lifetime, lambda: sys.exit(3))
        yield
        task.cancel()

    app.cleanup_ctx.append(guard)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, shutdown_timeout=3)


if __name__ == "__main__":
    main()
