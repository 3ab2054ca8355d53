"""Issue 17 item 3: both sides' WebSockets of a real server fuzzed from docs/protocol.md's tables.

A few thousand seeded frames (well-formed, mutated, junk); every reply must be
well-formed (a documented error code, never `internal`), the log must hold no
traceback and no 5xx, and the server must still serve a normal join afterwards.
The long run is benchmarks/ws_fuzz.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path

import pytest

from helpers import protocol_fuzz
from helpers.server import running_server
from signaling.call.protocol import CLIENT_MESSAGES
from helpers.ws_client import Client, enter_call

ROOT = Path(__file__).resolve().parents[2]
FRAMES_PER_SIDE = 1500
SEED = int(os.environ.get("WS_FUZZ_SEED", "1717"))


def test_the_documentation_lists_every_message_and_error_code_of_the_code() -> None:
    documented = protocol_fuzz.client_messages()
    assert {t: {f.name for f in fields} for t, fields in documented.items()} == \
        {t: set(schema) for t, schema in CLIENT_MESSAGES.items()}
    raised = set()
    for path in (ROOT / "signaling").rglob("*.py"):
        raised |= set(re.findall(r'ProtocolError\(\s*"([a-z-]+)"', path.read_text()))
    assert raised and raised <= protocol_fuzz.error_codes(), raised - protocol_fuzz.error_codes()


async def test_fuzzed_frames_on_both_sides_get_well_formed_replies(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    messages, codes = protocol_fuzz.client_messages(), protocol_fuzz.error_codes()
    async with running_server(tmp_path / "data", **{"ice.connect_timeout": 2.0}) as server:
        demo = await server.demo()
        limit = server.config.limits.max_message_bytes
        results = await asyncio.gather(*(
            protocol_fuzz.fuzz_link(demo[link], protocol_fuzz.MessageGenerator(SEED + i, messages, limit),
                                    FRAMES_PER_SIDE, codes)
            for i, link in enumerate(("practitioner_link", "patient_link"))))
        total = protocol_fuzz.FuzzCounts()
        for counts in results:
            total.add(counts)
        print(f"ws fuzz: {total.sent} frames, {sum(total.errors.values())} error replies {dict(total.errors)}, "
              f"{total.closes} closes, {total.replies} frames back")
        assert total.sent == 2 * FRAMES_PER_SIDE
        assert total.ill_formed == [], total.ill_formed[:5]
        assert total.errors["internal"] == 0
        # the fuzzing reached past the parser: refusals of several kinds
        assert {"bad-json", "too-deep", "unknown-type", "bad-message", "out-of-order"} <= set(total.errors), total.errors
        # a normal consultation still works
        fresh = await server.demo()
        doctor, patient = await Client.open(fresh["practitioner_link"]), await Client.open(fresh["patient_link"])
        try:
            await enter_call(doctor, patient)
        finally:
            await doctor.close()
            await patient.close()
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    statuses = [int(m.group(1)) for r in caplog.records if r.name == "aiohttp.access"
                for m in [re.search(r" (\d{3}) [\d.]+ ms$", r.getMessage())] if m]
    assert statuses and max(statuses) < 500
