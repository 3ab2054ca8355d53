"""Load generator: N 1:1 rooms of synthetic aiortc peers against one server, or direct.

Each peer sends pre-encoded VP8 (640x480, 30 fps, ~1 Mbit/s) + Opus (`bench_media`) and
receives the other peer's two tracks without decoding.  Modes:

- ``direct``: the two peers of a room connect to each other (no server): the baseline;
- ``ours``: our SFU, through the WebSocket protocol (`--links`: one demo per room);
- ``relay``: ``relay_baseline.py`` (aiortc MediaRelay, decode + re-encode), POST /offer;
- ``janus``: Janus videoroom over its HTTP API (publish, then subscribe to the other feed).

After every stream delivers frames and `--warmup` s, it measures over `--duration` s:
forwarded packets (inbound-rtp packetsReceived of every peer), loss (packetsLost),
video latency p50/p95 (trailer, or barcode decode for the relay, room 0 only), gaps
> 500 ms, the server's CPU from /proc/PID/stat and RSS (before any peer joined and at
the end), and its own CPU.  Prints one JSON object.  Pins itself to `--core` (1).

    loadgen.py --mode ours --rooms 4 --links links.json --server-pid 1234
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_media as bm  # noqa: E402
import janus_harness as jh  # noqa: E402
import rawmedia as rm  # noqa: E402
from bench_media import LoopTrack, StreamMeter  # noqa: E402

from sfu.ice import IcePolicy  # noqa: E402  (bench_media put the repository on sys.path)


def _caps(kind: str) -> list[Any]:
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    want = "audio/opus" if kind == "audio" else "video/vp8"
    chosen = [c for c in codecs if c.mimeType.lower() == want]
    if kind == "video":
        chosen += [c for c in codecs if c.mimeType.lower() == "video/rtx"]
    return chosen


def answer_keyframe_requests(sender: RTCRtpSender, track: Any) -> None:
    # aiortc's sender honours PLI/FIR only when it encodes; a browser sends a keyframe
    if isinstance(track, LoopTrack):
        sender._send_keyframe = track.force_keyframe  # type: ignore[method-assign]


class Peer:
    """One synthetic participant: its sending tracks, its peer connections and meters."""

    def __init__(self, room: int, side: int, media: bm.EncodedMedia, raw: bool = False) -> None:
        self.room, self.side = room, side
        self.name = f"r{room}{'ab'[side]}"
        self.raw = raw  # raw engine: aiortc negotiates, rawmedia sends and receives
        self.tracks: dict[str, Any] = (
            {"audio": rm.silent_track("audio"), "video": rm.silent_track("video")} if raw
            else {"audio": LoopTrack("audio", media), "video": LoopTrack("video", media)})
        self.pcs: list[RTCPeerConnection] = []
        self.meters: list[StreamMeter] = []
        self.other: Peer | None = None
        self.decode_sample = False  # relay only: decode video to read the barcode
        self.silent: list[Any] = []  # transceivers that carry nothing (our screen-share slot)

    def new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if self.raw:
                return
            t = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            log = self.other.tracks["video"].log if (self.decode_sample and self.other and track.kind == "video") else None
            meter = StreamMeter(track.kind, f"{self.name}-{track.kind}", log)
            meter.attach(t.receiver)  # nothing is decoded, even on slots that stay silent
            if t not in self.silent:
                self.meters.append(meter)

        return pc

    def add_send(self, pc: RTCPeerConnection, kind: str, direction: str = "sendrecv") -> None:
        t = pc.addTransceiver(self.tracks[kind], direction=direction)
        t.setCodecPreferences(_caps(kind))
        answer_keyframe_requests(t.sender, self.tracks[kind])

    def product_pc(self) -> RTCPeerConnection:
        """A peer connection shaped as the product's page: mic and camera sent, the other
        sections (the screen-share slot) received only; nobody shares a screen."""
        from sfu.participant import SOURCES  # the offer's sections must follow the server's order

        pc = self.new_pc()
        for source, kind in SOURCES:
            if source in ("mic", "camera"):
                self.add_send(pc, kind)
            else:
                t = pc.addTransceiver(kind, direction="recvonly")
                t.setCodecPreferences(_caps(kind))
                self.silent.append(t)
        return pc

    async def offer(self, pc: RTCPeerConnection) -> str:
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)

    async def close(self) -> None:
        for t in self.tracks.values():
            t.stop()
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


# ---------------------------------------------------------------- modes

async def connect_direct(a: Peer, b: Peer) -> None:
    pa, pb = a.new_pc(), b.new_pc()
    a.add_send(pa, "audio")
    a.add_send(pa, "video")
    offer = await a.offer(pa)
    await pb.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    for kind in ("audio", "video"):
        answer_keyframe_requests(pb.addTrack(b.tracks[kind]), b.tracks[kind])
    await pb.setLocalDescription(await pb.createAnswer())
    await pa.setRemoteDescription(pb.localDescription)


class OursSide:
    """One participant's WebSocket to our server."""

    def __init__(self, http: aiohttp.ClientSession, link: str) -> None:
        self.http, self.link = http, link
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None
        self.errors: list[dict[str, Any]] = []

    async def open(self) -> None:
        self.ws = await self.http.ws_connect(self.link.replace("http", "ws", 1) + "/ws")
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") == "error":
                    self.errors.append(data)
                await self.inbox.put(data)

    async def send(self, **msg: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(msg))

    async def expect(self, pred: Any, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = await asyncio.wait_for(self.inbox.get(), max(0.01, deadline - time.monotonic()))
            if msg.get("type") == "error":
                raise RuntimeError(f"server error: {msg}")
            if pred(msg):
                return msg

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


def _in_call(m: dict[str, Any]) -> bool:
    return m.get("type") == "state" and m["self"]["stage"] == "in_call"


async def connect_ours(a: Peer, b: Peer, link: dict[str, str], http: aiohttp.ClientSession,
                       sides: list[OursSide]) -> None:
    doctor, patient = OursSide(http, link["practitioner_link"]), OursSide(http, link["patient_link"])
    sides += [doctor, patient]
    await doctor.open()
    await doctor.expect(lambda m: m["type"] == "state")
    await doctor.send(type="join")
    await doctor.expect(lambda m: m["type"] == "state" and m["self"]["stage"] == "joined")
    await patient.open()
    welcome = await patient.expect(lambda m: m["type"] == "welcome")
    # the patient accepts the teleconsultation notice first (issue 19), as the page does
    await patient.send(type="consent", decision="given", version=welcome["notices"]["teleconsultation"]["version"])
    await patient.expect(lambda m: m["type"] == "state" and m["peer"]["stage"] == "joined"
                         and m["consent"]["teleconsultation"] == "given")
    await patient.send(type="ready")
    await asyncio.gather(doctor.expect(_in_call), patient.expect(_in_call))

    async def negotiate(peer: Peer, side: OursSide) -> None:
        pc = peer.product_pc()
        await side.send(type="offer", sdp=await peer.offer(pc))
        answer = await side.expect(lambda m: m["type"] == "answer")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    await asyncio.gather(negotiate(a, doctor), negotiate(b, patient))


async def connect_relay(a: Peer, b: Peer, url: str, http: aiohttp.ClientSession) -> None:
    async def one(peer: Peer) -> None:
        pc = peer.new_pc()
        peer.add_send(pc, "audio")
        peer.add_send(pc, "video")
        body = {"room": peer.room, "side": peer.side, "sdp": await peer.offer(pc)}
        async with http.post(url + "/offer", json=body, timeout=aiohttp.ClientTimeout(total=40)) as r:
            r.raise_for_status()
            answer = await r.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    await asyncio.gather(one(a), one(b))


async def connect_janus(a: Peer, b: Peer, session: jh.JanusSession) -> None:
    room = 1000 + a.room
    control = await session.attach()
    await session.request(control, jh.room_create_body(room))
    feeds = {0: room * 10 + 1, 1: room * 10 + 2}

    async def publish(peer: Peer) -> None:
        handle = await session.attach()
        await session.message(handle, {"request": "join", "room": room, "ptype": "publisher",
                                       "id": feeds[peer.side], "display": peer.name})
        pc = peer.new_pc()
        peer.add_send(pc, "audio", "sendonly")
        peer.add_send(pc, "video", "sendonly")
        sdp = await peer.offer(pc)
        event = await session.message(handle, {"request": "publish", "audio": True, "video": True},
                                      {"type": "offer", "sdp": sdp})
        await session.trickle_done(handle)
        await pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))

    async def subscribe(peer: Peer) -> None:
        handle = await session.attach()
        body = {"request": "join", "room": room, "ptype": "subscriber", "streams": [{"feed": feeds[1 - peer.side]}]}
        for attempt in range(100):  # the feed exists once the publisher's PeerConnection is up
            try:
                event = await session.message(handle, body)
                break
            except jh.JanusError as exc:
                if "No such feed" not in str(exc) or attempt == 99:
                    raise
                await asyncio.sleep(0.1)
        pc = peer.new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
        await pc.setLocalDescription(await pc.createAnswer())
        await session.message(handle, {"request": "start"},
                              {"type": "answer", "sdp": pc.localDescription.sdp})
        await session.trickle_done(handle)

    await asyncio.gather(publish(a), publish(b))
    await asyncio.gather(subscribe(a), subscribe(b))


# ---------------------------------------------------------------- measurement

async def inbound(pcs: list[RTCPeerConnection]) -> dict[str, int]:
    out = {"audio_received": 0, "video_received": 0, "lost": 0}
    for report in await asyncio.gather(*(pc.getStats() for pc in pcs), return_exceptions=True):
        if isinstance(report, BaseException):
            continue
        for s in report.values():
            if s.type == "inbound-rtp":
                out[f"{s.kind}_received"] += s.packetsReceived
                out["lost"] += max(0, s.packetsLost)
    return out


async def wait_flowing(peers: list[Peer], expected: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        meters = [m for p in peers for m in p.meters]
        if len(meters) >= expected and all(m.frames > 0 for m in meters):
            return time.monotonic() - t0
        await asyncio.sleep(0.1)
    meters = [m for p in peers for m in p.meters]
    silent = [m.label for m in meters if m.frames == 0]
    raise TimeoutError(f"media not flowing after {timeout} s: {len(meters)}/{expected} streams, silent {silent}")


async def start_raw(peers: list[Peer], media: bm.EncodedMedia, pacer: rm.Pacer, timeout: float = 30.0) -> list[rm.RawLink]:
    """Once every peer connection is up, send and receive their media on raw SRTP sockets."""
    pcs = [(p, pc) for p in peers for pc in p.pcs]
    deadline = time.monotonic() + timeout
    while any(pc.connectionState != "connected" for _, pc in pcs):
        if time.monotonic() > deadline:
            states = sorted({pc.connectionState for _, pc in pcs})
            raise TimeoutError(f"peer connections not connected after {timeout} s: {states}")
        await asyncio.sleep(0.05)
    packetised = rm.Packetised(media)
    links = [rm.RawLink(pc, p.name, packetised, set(p.silent)) for p, pc in pcs]
    for link in links:
        for stream in link.senders.values():
            pacer.add(stream)
        pacer.add_reports(link)
    pacer.start()
    return links


async def wait_flowing_raw(links: list[rm.RawLink], expected: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        streams = [r for link in links for r in link.receivers.values()]
        if len(streams) >= expected and all(r.frames > 0 for r in streams):
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    streams = [r for link in links for r in link.receivers.values()]
    raise TimeoutError(f"media not flowing after {timeout} s: {len(streams)}/{expected} streams")


def raw_inbound(links: list[rm.RawLink]) -> dict[str, int]:
    out = {"audio_received": 0, "video_received": 0, "lost": 0}
    for link in links:
        for r in link.receivers.values():
            out[f"{r.kind}_received"] += r.packets
            out["lost"] += max(0, r.expected - r.packets)
    return out


def keyframe_requests(peers: list[Peer], links: list[rm.RawLink]) -> int:
    if links:
        return sum(s.keyframe_requests for link in links for s in link.senders.values() if s.kind == "video")
    return sum(p.tracks["video"].keyframe_requests for p in peers)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    media = bm.encode_media(cache=Path(args.media_cache) if args.media_cache else None)
    pid = args.server_pid
    rss_idle = bm.proc_rss_mb(pid) if pid else None
    peers: list[Peer] = []
    raw = args.engine == "raw"
    for r in range(args.rooms):
        a, b = Peer(r, 0, media, raw), Peer(r, 1, media, raw)
        a.other, b.other = b, a
        if args.mode == "relay" and r == 0:
            a.decode_sample = b.decode_sample = True
        peers += [a, b]
    http = aiohttp.ClientSession()
    sides: list[OursSide] = []
    session: jh.JanusSession | None = None
    links = json.loads(Path(args.links).read_text()) if args.links else []
    result: dict[str, Any] = {"mode": args.mode, "rooms": args.rooms, "video_kbps": media.video_kbps}
    pacer = rm.Pacer()
    raw_links: list[rm.RawLink] = []
    try:
        t_setup = time.monotonic()
        if args.mode == "janus":
            session = jh.JanusSession(http)
            await session.create()
        for r in range(args.rooms):
            a, b = peers[2 * r], peers[2 * r + 1]
            if args.mode == "direct":
                await connect_direct(a, b)
            elif args.mode == "ours":
                await connect_ours(a, b, links[r], http, sides)
            elif args.mode == "relay":
                await connect_relay(a, b, args.url, http)
            elif args.mode == "janus":
                assert session is not None
                await connect_janus(a, b, session)
        result["setup_s"] = round(time.monotonic() - t_setup, 2)
        pcs = [pc for p in peers for pc in p.pcs]
        if raw:
            raw_links = await start_raw(peers, media, pacer)
            result["first_media_s"] = round(await wait_flowing_raw(raw_links, 4 * args.rooms, 30.0), 2)
        else:
            result["first_media_s"] = round(await wait_flowing(peers, 4 * args.rooms, 30.0), 2)
        await asyncio.sleep(args.warmup)
        meters: list[Any] = ([r for link in raw_links for r in link.receivers.values()] if raw
                             else [m for p in peers for m in p.meters])
        s0 = raw_inbound(raw_links) if raw else await inbound(pcs)
        for m in meters:
            m.reset_window()
        kf0 = keyframe_requests(peers, raw_links)
        # packets and CPU are read together, without awaiting in between: the same window
        if args.profile_window and pid:
            os.kill(pid, signal.SIGUSR1)  # profiled_serve.py: the profiler runs from here
        cpu0 = bm.proc_cpu_s(pid) if pid else 0.0
        others0 = {other: bm.proc_cpu_s(other) for other in args.other_pid}
        c0, g0, t0 = bm.cores_jiffies(), os.times(), time.monotonic()
        server_threads0 = bm.thread_cpu_s(pid) if pid else {}
        await asyncio.sleep(args.duration)
        if raw:
            s1 = raw_inbound(raw_links)
        c1, g1, t1 = bm.cores_jiffies(), os.times(), time.monotonic()
        cpu1 = bm.proc_cpu_s(pid) if pid else 0.0
        others1 = {other: bm.proc_cpu_s(other) for other in args.other_pid}
        server_threads1 = bm.thread_cpu_s(pid) if pid else {}
        if args.profile_window and pid:
            os.kill(pid, signal.SIGUSR2)  # ... to here, and writes its file
        if not raw:
            s1 = await inbound(pcs)
        secs = t1 - t0
        fwd = (s1["audio_received"] - s0["audio_received"]) + (s1["video_received"] - s0["video_received"])
        lost = s1["lost"] - s0["lost"]
        lat = [x for m in meters if m.kind == "video" for x in m.latencies_us]
        video = [m for m in meters if m.kind == "video"]
        server_cpu = cpu1 - cpu0
        streams = 4 * args.rooms
        result.update({
            "seconds": round(secs, 2),
            "fwd_pkts": fwd,
            "fwd_pkt_s": round(fwd / secs, 1),
            "fwd_video_pkt_s": round((s1["video_received"] - s0["video_received"]) / secs, 1),
            "lost": lost,
            "loss_pct": round(100 * lost / max(1, fwd + lost), 3),
            "video_fps_min": round(min(m.frames for m in video) / secs, 1) if video else None,
            "video_fps_mean": round(sum(m.frames for m in video) / len(video) / secs, 1) if video else None,
            "audio_pps_min": round(min(m.frames for m in meters if m.kind == "audio") / secs, 1),
            "gaps_500ms": sum(m.gaps for m in meters),
            "keyframe_requests": keyframe_requests(peers, raw_links) - kf0,
            "engine": args.engine,
            # when each gap ended (s into the window) and how long it was: all streams at once
            # means the server (or the box) stalled; one video stream alone, a keyframe wait
            "gap_events": sorted((round(t - t0, 2), m.label, ms) for m in meters for t, ms in m.gap_events)[:60],
            "max_gap_ms": round(1000 * max(m.max_gap_s for m in meters), 1),
            "latency_samples": len(lat),
            "latency_p50_ms": _ms(bm.percentile(lat, 50)),
            "latency_p95_ms": _ms(bm.percentile(lat, 95)),
            "latency_max_ms": _ms(max(lat) if lat else None),
            "latency_streams": sum(1 for m in video if m.latencies_us),
            "no_trailer_frames": sum(m.no_trailer for m in meters),
            "gen_cpu_pct": round(100 * ((g1.user - g0.user) + (g1.system - g0.system)) / secs, 1),
            "gen_system_pct": round(100 * (g1.system - g0.system) / secs, 1),  # the kernel's share (sendto, recvfrom)
            # whole-machine view: other processes on the same cores disturb latency
            "core_busy_pct": bm.cores_busy(c0, c1),
            # --other-pid: more server processes (e.g. a second node), over the same window
            "other_cpu_s": {str(other): round(others1[other] - others0[other], 3) for other in args.other_pid},
        })
        if pid:
            rss_end = bm.proc_rss_mb(pid)
            result.update({
                "server_cpu_s": round(server_cpu, 3),
                "server_cpu_pct": round(100 * server_cpu / secs, 1),
                "us_per_pkt": round(1e6 * server_cpu / fwd, 1) if fwd else None,
                "ms_per_stream_s": round(1000 * server_cpu / (streams * secs), 2),
                "rss_idle_mb": round(rss_idle or 0, 1),
                "rss_end_mb": round(rss_end, 1),
                "rss_per_participant_mb": round((rss_end - (rss_idle or 0)) / (2 * args.rooms), 2),
                # where the server's CPU went, by thread name (Janus: one loop thread per handle, HTTP...)
                "server_threads_cpu_pct": bm.threads_pct(server_threads0, server_threads1, secs),
            })
        if sides:
            result["server_errors"] = [e for s in sides for e in s.errors]
    finally:
        await pacer.stop()
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
        await asyncio.gather(*(s.close() for s in sides), return_exceptions=True)
        if session is not None:
            await session.destroy()
        await http.close()
    return result


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["direct", "ours", "relay", "janus"], required=True)
    p.add_argument("--rooms", type=int, default=1)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=4.0)
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--other-pid", type=int, action="append", default=[],
                   help="another server process whose CPU to read over the same window (repeatable)")
    p.add_argument("--links", help="ours: JSON list of `teleconsult demo --json` objects, one per room")
    p.add_argument("--url", default="", help="relay: base URL of relay_baseline.py")
    p.add_argument("--ip", default="127.0.0.2", help="the only address the peers' ICE uses")
    p.add_argument("--ports", default="30000-39999")
    p.add_argument("--core", type=int, default=1)
    p.add_argument("--media-cache", default="")
    p.add_argument("--engine", choices=["raw", "aiortc"], default="raw",
                   help="raw: media from pre-packetised RTP on raw SRTP sockets (cheap); aiortc: aiortc's RTP stack")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="the generator's event loop")
    p.add_argument("--profile-window", action="store_true",
                   help="send the server SIGUSR1 and SIGUSR2 around the window (benchmarks/profiled_serve.py)")
    p.add_argument("--timeout", type=float, default=0, help="overall guard (default: setup + warmup + duration + 90 s)")
    args = p.parse_args()
    if args.core >= 0 and (os.cpu_count() or 1) > args.core:
        os.sched_setaffinity(0, {args.core})
    lo, hi = (int(x) for x in args.ports.split("-"))
    IcePolicy(addresses=[args.ip], port_min=lo, port_max=hi).install()
    timeout = args.timeout or (args.warmup + args.duration + 90 + 3 * args.rooms)
    if args.mode == "relay":
        args.engine = "aiortc"  # the relay's latency is read from decoded pictures
    if args.loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(asyncio.wait_for(run(args), timeout))
    else:
        result = asyncio.run(asyncio.wait_for(run(args), timeout))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
