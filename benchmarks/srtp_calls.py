"""SRTP protect + unprotect per packet: pylibsrtp's own methods against the SFU's lean calls.

The SFU protects and unprotects every forwarded packet once each.  pylibsrtp's
methods allocate a length cell and type-check on every call; sfu/aiortc_hooks.py's
`rtp_protector`/`rtp_unprotector` reuse one.  Same keys, same 1,100-byte packets,
alternated in rounds so that the box's load hits both alike::

    .venv/bin/python benchmarks/srtp_calls.py [--packets 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pylibsrtp import Policy, Session  # noqa: E402

from sfu import aiortc_hooks as hooks  # noqa: E402

Call = Callable[[bytes], bytes]


def sessions() -> tuple[Session, Session]:
    key = os.urandom(30)
    return (Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
            Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND)))


def per_packet_us(protect: Call, unprotect: Call, packets: list[bytes]) -> float:
    start = time.perf_counter()
    for packet in packets:
        unprotect(protect(packet))
    return (time.perf_counter() - start) / len(packets) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    payload = os.urandom(1100)
    packets = [bytes([0x80, 96]) + (n & 0xFFFF).to_bytes(2, "big") + bytes(4) + (5).to_bytes(4, "big") + payload
               for n in range(min(args.packets, 60000))]  # under the replay window's wrap
    theirs: list[float] = []
    ours: list[float] = []
    for _ in range(args.rounds):
        tx, rx = sessions()
        theirs.append(per_packet_us(tx.protect, rx.unprotect, packets))
        tx, rx = sessions()
        ours.append(per_packet_us(hooks.rtp_protector(tx), hooks.rtp_unprotector(rx), packets))
    base, lean = statistics.median(theirs), statistics.median(ours)
    print(f"{len(packets)} packets x {args.rounds} rounds, 1112-byte RTP packets, median of rounds")
    print(f"pylibsrtp Session.protect + unprotect : {base:.2f} us per packet")
    print(f"sfu lean rtp_protector + unprotector  : {lean:.2f} us per packet")
    print(f"ratio lean / pylibsrtp                : {lean / base:.2f}x (saves {base - lean:.2f} us per forwarded packet)")


if __name__ == "__main__":
    main()
