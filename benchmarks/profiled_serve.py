"""`teleconsult` under a profiler that runs only while a load generator measures.

    profiled_serve.py PROFILE serve --config config.toml

Starts the command line as `teleconsult` would, with cProfile off. SIGUSR1
starts the profiler, SIGUSR2 stops it and writes PROFILE (`loadgen.py
--profile-window` sends them around its measurement window), so the profile
holds the forwarding of a steady load and none of the start-up, the ICE and
DTLS set-up or the shutdown: at one room the start-up's imports alone weigh
more than the window's packets. Used by profile_forwarding.py.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from pathlib import Path
from types import FrameType


def main() -> int:
    out = Path(sys.argv[1])
    profiler = cProfile.Profile()

    def start(_sig: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(str(out))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    from signaling.cli import main as teleconsult

    sys.argv = ["teleconsult", *sys.argv[2:]]
    return teleconsult() or 0


if __name__ == "__main__":
    sys.exit(main())
