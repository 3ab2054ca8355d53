"""Issue 17 item 6: upload quotas per side and per consultation; no patient upload to a closed act.

Before: one patient link stored 30 files sent at once, whatever their total, and could
still add documents to a closed act.  Real server on loopback, real SQLite and disk.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from pathlib import Path

from clinic import ConsultationState, Stage
from helpers.server import running_server
from test_chat_files import files_under, upload

KB = 1024


def pdf(size: int) -> bytes:
    return b"%PDF-1.4\n%" + os.urandom(size - 17) + b"\n%%EOF\n"


async def test_uploads_sent_at_once_stay_within_the_quotas(tmp_path: Path) -> None:
    overrides = {"documents.max_bytes_per_side": 600 * KB, "documents.max_bytes_per_consultation": 1000 * KB}
    async with running_server(tmp_path / "data", **overrides) as server:
        demo = await server.demo()
        results = await asyncio.gather(*(upload(demo["patient_link"], pdf(100 * KB), f"scan{i}.pdf")
                                         for i in range(30)))
        statuses = [status for status, _ in results]
        # bytes in flight count: at most 6 of 100 KiB fit (fewer if several were cut mid-way)
        assert 1 <= statuses.count(201) <= 6 and statuses.count(201) + statuses.count(413) == 30, statuses
        refusal = next(body for status, body in results if status == 413)
        assert refusal["error"] == "quota" and refusal["scope"] == "side" and refusal["max_bytes"] == 600 * KB
        assert "No more room" in refusal["message"]
        # the refused ones gave their bytes back: one at a time, the side fills up to exactly its quota
        for i in range(6 - statuses.count(201)):
            assert (await upload(demo["patient_link"], pdf(100 * KB), f"again{i}.pdf"))[0] == 201
        assert (await upload(demo["patient_link"], pdf(100 * KB), "one-too-many.pdf"))[0] == 413
        stored = files_under(server.config.data_path / "documents")
        assert len(stored) == 6 and sum(p.stat().st_size for p in stored) == 600 * KB  # no temporary file left
        # the practitioner has a side of their own, but the consultation's total holds
        status, _ = await upload(demo["practitioner_link"], pdf(300 * KB), "report.pdf")
        assert status == 201
        status, body = await upload(demo["practitioner_link"], pdf(200 * KB), "more.pdf")
        assert status == 413 and body["scope"] == "consultation"
        # a failed upload gives its bytes back: what fits still fits
        status, _ = await upload(demo["practitioner_link"], pdf(100 * KB), "last.pdf")
        assert status == 201


async def test_the_patient_cannot_add_to_a_closed_act(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        cid = demo["consultation_id"]
        status, _ = await upload(demo["patient_link"], pdf(10 * KB), "before.pdf")
        assert status == 201
        await server.clinic.update_consultation(cid, state=ConsultationState.ENDED,
                                                practitioner_stage=Stage.ENDED, patient_stage=Stage.ENDED)
        consultation = await server.clinic.get_consultation(cid)
        await server.clinic.practice.close_act(cid, consultation.practitioner_id, base_url=server.base_url,
                                               link_lifetime=datetime.timedelta(days=1), tz=datetime.UTC)
        for link in (demo["patient_link"], demo["practitioner_link"]):
            status, body = await upload(link, pdf(10 * KB), "after.pdf")
            assert status == 409 and body["error"] == "closed", body
        assert [d.name for d in await server.clinic.list_documents(consultation_id=cid)] == ["before.pdf"]
        assert len(files_under(server.config.data_path / "documents")) == 1
