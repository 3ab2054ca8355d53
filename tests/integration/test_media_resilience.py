"""The media path under loss, for late joiners, and across many joins and leaves."""

from __future__ import annotations

import asyncio
import os
import random
import threading

import pytest
from helpers.loss import inject_loss
from helpers.media_peers import Peer, connect, dominant_colour

from sfu import Room, SfuOptions


async def test_five_percent_loss_on_the_publishers_leg_is_repaired_by_the_sfu() -> None:
    # aiortc as the *subscriber* cannot ride out loss itself (it NACKs a gap once and
    # then waits); browsers can: tests/e2e/test_resilience.py covers loss both ways
    room = Room("loss", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    rng = random.Random(7)
    try:
        a = await connect(room, "a", "practitioner", red)
        await connect(room, "b", "patient", blue)
        await blue.wait_video()
        dropped = inject_loss(a, 0.05, rng)
        start = len(blue.video_pts)
        await asyncio.sleep(5)
        pts = blue.video_pts[start:]
        assert len(pts) > 100, len(pts)  # ~30 fps kept flowing
        # media time between consecutive decoded frames: no freeze over 500 ms
        gaps = [b_ - a_ for a_, b_ in zip(pts, pts[1:])]
        assert max(gaps) < 45000, max(gaps)
        assert dominant_colour(blue.video_frames[-1]) == "red"
        assert dropped["in"] > 5 and dropped["out"] > 5, dropped
        # the losses were repaired by asking the publisher to resend
        assert a.producers["camera"].nacks_sent > 0
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


async def test_a_late_joiner_gets_a_picture_thanks_to_a_keyframe_request() -> None:
    room = Room("late", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    try:
        a = await connect(room, "a", "practitioner", red)
        await asyncio.sleep(3)  # the publisher's first keyframe is long gone
        camera = a.producers["camera"]
        requests_before = camera.keyframe_requests
        joined = asyncio.get_running_loop().time()
        await connect(room, "b", "patient", blue)
        assert dominant_colour(await blue.wait_video(count=1)) == "red"
        # aiortc's encoder makes keyframes only when asked: this one was asked by the SFU
        assert camera.keyframe_requests > requests_before
        assert camera.keyframes >= 2
        print(f"late joiner: first frame {1000 * ((blue.first_video_at or 0) - joined):.0f} ms after joining")
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def media_threads() -> int:
    # the loop's default executor keeps its workers (aiortc encodes there): not a leak
    # (named "asyncio_N", or "uvloop_N" under uvloop)
    return sum(1 for t in threading.enumerate() if not t.name.startswith(("asyncio", "uvloop")))


@pytest.mark.parametrize("cycles", [4])
async def test_joins_and_leaves_leak_no_sockets_tasks_or_threads(cycles: int) -> None:
    room = Room("leak", SfuOptions())
    red = Peer("red")
    try:
        await connect(room, "a", "practitioner", red)
        await asyncio.sleep(1.0)  # the publisher's own tasks all started
        baseline = (open_fds(), len(asyncio.all_tasks()), media_threads())
        for i in range(cycles):
            blue = Peer("blue")
            b = await connect(room, f"b{i}", "patient", blue)
            await blue.wait_video(count=2)
            b.close()
            await b.wait_closed()
            await blue.close()
        for _ in range(50):  # closing peer connections wind down their tasks
            fds, tasks, threads = open_fds(), len(asyncio.all_tasks()), media_threads()
            if tasks <= baseline[1] + 2 and fds <= baseline[0] + 2 and threads <= baseline[2]:
                break
            await asyncio.sleep(0.1)
        assert len(room.participants) == 1
        assert fds <= baseline[0] + 2, (baseline, fds)
        assert tasks <= baseline[1] + 2, (baseline, tasks)
        assert threads <= baseline[2], (baseline, threads, [t.name for t in threading.enumerate()])
    finally:
        room.close()
        await room.wait_closed()
        await red.close()
