"""The forwarding path in one process, no sockets: its own cost, warm and with cold caches.

    .venv/bin/python benchmarks/hot_path.py [--packets 2000] [--evict-mb 64]

One video publisher's SRTP packets (VP8, 1100-byte payloads, a frame every four
packets) go through what the server runs for each of them: the UDP guard's
checks, SRTP unprotect, `RtpStream.receive` (the ingress), `Producer` (the
duplicate check, the keyframe gate's detection), a `Consumer` and its
`RtpEgress` (header rewrite, history, SRTP protect) and a write that keeps the
datagram. What it leaves out: the kernel (recvmsg, sendto, epoll) and the
event loop's own work around each callback. The same run times the ingress
alone (a producer nobody subscribes to): the rest is the egress side.

It times each packet (the median is printed) in two modes, each on its own
packets (SRTP refuses a replay) of the same shape:
- warm: back to back, as a loop that does nothing else: every cache holds the
  path's code and data;
- cold: between two packets it walks a buffer bigger than the last-level
  cache (`--evict-mb`), as the kernel, other processes and other tenants of a
  VM's host do between two wake-ups of a server at low and moderate load.

Baseline, measured in the same run on packets of the same shape: a minimal forwarder
(unprotect, rewrite SSRC and sequence number with `struct`, protect, write),
the floor a Python forwarder cannot go under. Prints µs per packet of each,
warm and cold, and the ratio of the path to the floor.

Why: on this box the server's CPU per forwarded packet swings by a third to a
half between runs of the same code (docs/performance.md), far more than a
change to the path can move it; this figure moves only with the code. It is
not a replacement for sfu_compare.py: it says what a change does to the path,
not what the server costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pylibsrtp
from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sfu import Consumer  # noqa: E402
from sfu import aiortc_hooks as hooks  # noqa: E402
from sfu.egress import LegParameters, RtpEgress  # noqa: E402
from sfu.producer import Producer  # noqa: E402
from sfu.udp_guard import UdpGuard, well_formed_media  # noqa: E402

VP8, RTX = 96, 97
PAYLOAD = 1100


class _Sender:
    """The parts of an RTCRtpSender that LegParameters reads."""

    def __init__(self) -> None:
        self._ssrc = 0x11111111
        self._rtx_ssrc = 0x22222222


def _sessions() -> tuple[pylibsrtp.Session, pylibsrtp.Session, pylibsrtp.Session]:
    """(the publisher's outbound, the server's inbound for it, the server's outbound to the subscriber)."""
    key = os.urandom(30)
    publisher = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    inbound = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    outbound = pylibsrtp.Session(pylibsrtp.Policy(key=os.urandom(30), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    return publisher, inbound, outbound


def _wire(publisher: pylibsrtp.Session, count: int) -> list[bytes]:
    """`count` protected VP8 packets as a browser sends them; the first starts a keyframe."""
    out = []
    for i in range(count):
        descriptor = b"\x10\x00" if i == 0 else (b"\x10\x01" if i % 4 == 0 else b"\x00\x01")
        packet = RtpPacket(payload_type=VP8, sequence_number=(1000 + i) & 0xFFFF, timestamp=3000 * (i // 4),
                           ssrc=0x5EED, marker=int(i % 4 == 3), payload=descriptor + bytes(PAYLOAD))
        out.append(publisher.protect(packet.serialize()))
    return out


def _leg() -> LegParameters:
    codecs = [RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=100),
              RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=101, parameters={"apt": 100})]
    extensions = [
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    ]
    parameters = RTCRtpSendParameters(codecs=codecs, headerExtensions=extensions, muxId="1",
                                      rtcp=RTCRtcpParameters(cname="hot-path"))
    return LegParameters(_Sender(), parameters)  # type: ignore[arg-type]


class _Path:
    """The server's objects for one publisher and one subscriber; `handle` takes one datagram."""

    def __init__(self, inbound: pylibsrtp.Session, outbound: pylibsrtp.Session, sent: list[bytes],
                 subscribed: bool = True) -> None:
        self.pc = RTCPeerConnection()
        receiver = self.pc.addTransceiver("video").receiver
        self.producer = Producer("hot-path", "video", "camera", receiver, keyframe_request_interval=1.0)
        self.producer.stream.start(RTCRtpReceiveParameters(codecs=[
            RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=VP8),
            RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=RTX, parameters={"apt": VP8})]))
        self.consumer = Consumer("video", "camera")
        if subscribed:  # else the producer forwards to nobody: the ingress side alone
            self.consumer.bind(self.producer)
            protect = hooks.rtp_protector(outbound)
            self.consumer.start(RtpEgress("video", _leg(), lambda data: sent.append(protect(data))))
        guard, unprotect, receive = UdpGuard(), hooks.rtp_unprotector(inbound), self.producer.stream.receive

        def from_leg() -> bool:
            return True

        def handle(data: bytes) -> None:  # as sfu/ice.py's GuardedProtocol: media from the leg's pair first
            if well_formed_media(data, guard.max_size) or guard.admit(data, from_leg) is not None:
                receive(unprotect(data), False)
        self.handle = handle

    async def close(self) -> None:
        self.consumer.stop()
        self.producer.close()
        await self.pc.close()


def _floor(inbound: pylibsrtp.Session, outbound: pylibsrtp.Session, sent: list[bytes]) -> Callable[[bytes], None]:
    unprotect, protect = hooks.rtp_unprotector(inbound), hooks.rtp_protector(outbound)
    seq_at = struct.Struct("!H")
    seq_ssrc = struct.Struct("!HxxxxI")

    def forward(data: bytes) -> None:
        plain = bytearray(unprotect(data))
        seq_ssrc.pack_into(plain, 2, (seq_at.unpack_from(plain, 2)[0] + 7) & 0xFFFF, 0x11111111)
        sent.append(protect(bytes(plain)))
    return forward


def _time(handle: Callable[[bytes], None], wire: list[bytes], evict: np.ndarray | None) -> float:
    """Median µs of `handle` on one packet of `wire`; with `evict`, the caches walked over before each.

    The median, not the mean: a neighbour's burst on the host lands on a few packets, not on the figure.
    """
    times = []
    clock = time.perf_counter
    for data in wire:
        if evict is not None:
            np.add(evict, 1.0, out=evict)
        t0 = clock()
        handle(data)
        times.append(clock() - t0)
    return 1e6 * statistics.median(times)


async def run(packets: int, evict_mb: int) -> dict[str, float]:
    evict = np.zeros(evict_mb * (1 << 20) // 8)
    results: dict[str, float] = {}
    for mode in ("warm", "cold"):
        walk = evict if mode == "cold" else None
        count = packets if walk is not None else 10 * packets  # warm packets cost microseconds, cold ones a walk
        # fresh sessions and objects for each: SRTP refuses replays, and the stream starts anew
        publisher, inbound, outbound = _sessions()
        wire, sent = _wire(publisher, count + 1), list[bytes]()
        path = _Path(inbound, outbound, sent)
        path.handle(wire[0])  # the keyframe opens the consumer's gate
        results[f"path_{mode}_us"] = _time(path.handle, wire[1:], walk)
        await path.close()
        if len(sent) != count + 1:
            raise SystemExit(f"the path forwarded {len(sent)} of {count + 1} packets: not measuring forwarding")
        publisher, inbound, outbound = _sessions()
        path = _Path(inbound, outbound, sent, subscribed=False)
        results[f"ingress_{mode}_us"] = _time(path.handle, _wire(publisher, count), walk)
        await path.close()
        if path.producer.packets != count:
            raise SystemExit(f"the ingress took {path.producer.packets} of {count} packets")
        publisher, inbound, outbound = _sessions()
        results[f"floor_{mode}_us"] = _time(_floor(inbound, outbound, []), _wire(publisher, count), walk)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packets", type=int, default=2000, help="packets timed cold (warm: ten times as many)")
    p.add_argument("--evict-mb", type=int, default=64, help="bigger than the last-level cache (this box: 32 MB)")
    args = p.parse_args()
    r = asyncio.run(run(args.packets, args.evict_mb))
    print(f"# hot_path: median µs per VP8 packet, one publisher to one subscriber, in one process "
          f"({10 * args.packets} packets warm, {args.packets} cold)")
    print("| | our path µs/packet | of which ingress (no subscriber) | floor µs/packet | path / floor |\n"
          "|---|---|---|---|---|")
    for mode in ("warm", "cold"):
        path, ingress, floor = r[f"path_{mode}_us"], r[f"ingress_{mode}_us"], r[f"floor_{mode}_us"]
        print(f"| {mode} | {path:.2f} | {ingress:.2f} | {floor:.2f} | {path / floor:.2f}x |")
    print(f"cold / warm: path {r['path_cold_us'] / r['path_warm_us']:.1f}x, "
          f"floor {r['floor_cold_us'] / r['floor_warm_us']:.1f}x")


if __name__ == "__main__":
    main()
