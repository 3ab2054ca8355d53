"""Media workers: the [sfu] workers setting, the port slices, and the message channel to a real worker process."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from sfu import ClosedError, IcePolicy, MediaError, SfuOptions
from sfu.remote import WorkerPool, port_slices
from signaling.config import load_config
from signaling.errors import ConfigError


def test_workers_default_auto_and_numbers() -> None:
    cores = len(os.sched_getaffinity(0))
    assert load_config(None).sfu.workers == "auto" and load_config(None).sfu.worker_count == cores
    assert load_config(None, **{"sfu.workers": "auto"}).sfu.worker_count == cores
    assert load_config(None, **{"sfu.workers": 1}).sfu.worker_count == 1
    assert load_config(None, **{"sfu.workers": 3}).sfu.worker_count == 3


@pytest.mark.parametrize("value, why", [
    ("three", 'must be "auto"'), (0, "between 1 and 64"), (65, "between 1 and 64"),
    (True, "an integer or a string"), (1.5, "an integer or a string"),
])
def test_bad_workers_settings_are_refused(value: Any, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        load_config(None, **{"sfu.workers": value})


def test_each_worker_needs_a_port() -> None:
    with pytest.raises(ConfigError, match="one UDP port per worker"):
        load_config(None, **{"sfu.workers": 4, "ice.port_min": 40000, "ice.port_max": 40002})


def test_port_slices_cover_the_range_without_overlap() -> None:
    assert port_slices(40000, 40999, 2) == [(40000, 40499), (40500, 40999)]
    assert port_slices(40000, 40009, 3) == [(40000, 40003), (40004, 40006), (40007, 40009)]
    assert port_slices(5, 5, 1) == [(5, 5)]
    with pytest.raises(ValueError):
        port_slices(40000, 40001, 3)


async def test_the_channel_carries_the_room_api_to_a_real_worker() -> None:
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 41200, 41203), 2)
    await pool.start()
    try:
        first, second, third = pool.room("c1"), pool.room("c2"), pool.room("c3")
        # least loaded by rooms: two workers get one each, the third room goes to the first again
        assert first.worker is not second.worker and third.worker is first.worker
        a = first.add_participant("a", "practitioner")
        with pytest.raises(ValueError):
            first.add_participant("a", "patient")
        # a malformed offer is the SFU's MediaError, across the process boundary
        with pytest.raises(MediaError, match="must carry"):
            await a.handle_offer("v=0\r\n")
        stats = await a.stats()
        assert stats is not None and stats["id"] == "a" and stats["role"] == "practitioner"
        info = {w["worker"]: w for w in await pool.stats()}
        assert info[0]["rooms"] == 2 and info[0]["participants"] == 1 and info[1]["rooms"] == 1
        assert info[0]["pid"] == pool.workers[0].pid != os.getpid()
        # closing a participant here closes it in the worker
        a.close()
        with pytest.raises(ClosedError):
            await a.handle_offer("v=0\r\n")
        b = first.add_participant("b", "patient")
        first.close()
        assert b.closed and first.closed
        for _ in range(50):  # the close travels as a message: bounded wait for the worker's count
            info = {w["worker"]: w for w in await pool.stats()}
            if info[0]["participants"] == 0:
                break
            await asyncio.sleep(0.05)
        assert info[0]["rooms"] == 1 and info[0]["participants"] == 0
        # a participant the worker does not know (closed there): ClosedError, not a hang
        assert pool.workers[1].channel is not None
        with pytest.raises(ClosedError):
            await pool.workers[1].channel.request("offer", participant="nobody", sdp="")
    finally:
        await pool.close()
    # the channel's EOF made each worker close its rooms and exit by itself
    assert [w.process.returncode for w in pool.workers if w.process is not None] == [0, 0]
