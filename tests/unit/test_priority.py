"""[media] realtime_priority (sfu/priority.py): the media loop's thread under SCHED_RR, nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# in a process of its own: the policy of the thread that asked, of a thread and a process it starts after
PROBE = """
import json, os, subprocess, sys, threading
from sfu.priority import apply_realtime
done = apply_realtime(int(sys.argv[1]))
seen = {}
t = threading.Thread(target=lambda: seen.update(thread=os.sched_getscheduler(0)))
t.start(); t.join()
child = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"], capture_output=True, text=True)
print(json.dumps({"done": done, "loop": os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK,
                  "priority": os.sched_getparam(0).sched_priority, "thread": seen["thread"],
                  "child": int(child.stdout)}))
"""


def probe(priority: int, prefix: tuple[str, ...] = ()) -> tuple[dict[str, int], str]:
    done = subprocess.run([*prefix, sys.executable, "-c", PROBE, str(priority)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_the_loop_thread_alone_runs_round_robin() -> None:
    import os

    if os.geteuid() != 0:
        pytest.fail("run as root (scripts/test does, and CI): SCHED_RR needs CAP_SYS_NICE")
    got, _ = probe(7)
    assert got == {"done": True, "loop": os.SCHED_RR, "priority": 7,
                   "thread": os.SCHED_OTHER, "child": os.SCHED_OTHER}


def test_off_by_default_and_refused_politely_without_the_right() -> None:
    import os

    got, _ = probe(0)
    assert got["done"] is False and got["loop"] == os.SCHED_OTHER
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is missing"
    # root without CAP_SYS_NICE, and RLIMIT_RTPRIO 0: what an unprivileged service without LimitRTPRIO has
    got, stderr = probe(7, (setpriv, "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", "--"))
    assert got["done"] is False and got["loop"] == os.SCHED_OTHER
    assert "realtime_priority = 7 refused" in stderr and "LimitRTPRIO=7" in stderr
