"""Real-time scheduling for the thread that forwards media ([media] realtime_priority).

A media loop held 20-40 ms by the machine's other work has held every call's
voice that long, and the browsers conceal it: on a box shared with two
browsers a server at normal priority did that in 3 of 6 runs of a benchmark
scenario, and in none under SCHED_RR (docs/performance.md, "page CPU").  Media
servers have long offered it (Asterisk `-p`, FreeSWITCH `-rp`).  The kernel
keeps 5 % of each second for normal processes whatever an RR thread does
(sched_rt_runtime_us), so a loop that spins cannot lock the machine.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def apply_realtime(priority: int) -> bool:
    """Put the calling thread under SCHED_RR at `priority` (1-99); 0 leaves it alone.  Threads and processes
    it starts later run at normal priority (SCHED_RESET_ON_FORK: an executor's thread, the recording
    composer).  False, with a warning naming the fix, where the process may not."""
    if priority <= 0:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError as exc:  # EPERM: no CAP_SYS_NICE and RLIMIT_RTPRIO under `priority`
        logger.warning("[media] realtime_priority = %d refused (%s): the media loop of process %d runs at "
                       "normal priority; allow it with LimitRTPRIO=%d in the service's unit "
                       "(docs/operations.md)", priority, exc.strerror, os.getpid(), priority)
        return False
    logger.info("media loop of process %d under SCHED_RR, priority %d", os.getpid(), priority)
    return True
