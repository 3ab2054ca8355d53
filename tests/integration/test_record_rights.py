"""The patient's rights: the record exported as one archive, erased by the operator after retention (issue 19 item 4)."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import subprocess
import sys
import urllib.parse
import zipfile
from pathlib import Path

import aiohttp
import pytest

from clinic import NotFound
from clinic.notices import TELECONSULTATION
from clinic.record_export import ErasureRefused
from helpers.practice import Browserless, sql
from sealing import generate_key
from helpers.server import running_server

NOTE = b"Compte rendu: tension 12/8, revoir dans 3 mois.\n" * 2000


async def upload(link: str, data: bytes, name: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{link}/files?name={urllib.parse.quote(name)}", data=io.BytesIO(data)) as r:
            assert r.status == 201
            document_id: str = (await r.json())["document"]["id"]
            return document_id


async def test_the_record_exports_as_one_archive_and_only_for_the_care_team(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    generate_key(key_file)
    async with running_server(tmp_path / "data", **{"storage.key_file": str(key_file)}) as server:
        demo = await server.demo()
        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        patient_id = consultation.patient_id
        document_id = await upload(demo["patient_link"], NOTE, "compte-rendu.txt")
        await server.clinic.record_consent(demo["consultation_id"], "patient", "teleconsultation", "given",
                                           TELECONSULTATION.version)
        c = Browserless(server.base_url)
        try:
            await c.login(demo["practitioner"]["email"], demo["practitioner"]["password"])
            _, page = await c.get(f"/records/{patient_id}")
            assert 'data-testid="record-export"' in page and 'data-testid="consent-entry"' in page
            response, body = await c.get_bytes(f"/records/{patient_id}/export")
            assert response.status == 200 and response.headers["Content-Type"] == "application/zip"
            assert "attachment" in response.headers["Content-Disposition"]
        finally:
            await c.close()
        archive = zipfile.ZipFile(io.BytesIO(body))
        names = archive.namelist()
        assert {"index.html", "consultations.json", "consents.json", "audit.json", "documents.json"} <= set(names)
        [doc_name] = [n for n in names if n.startswith("documents/")]
        assert doc_name.endswith("compte-rendu.txt") and archive.read(doc_name) == NOTE  # decrypted
        consultations = json.loads(archive.read("consultations.json"))
        assert [(x["id"], x["scheduled_at"][:10]) for x in consultations] == [
            (demo["consultation_id"], consultation.scheduled_at.date().isoformat())]
        consents = json.loads(archive.read("consents.json"))
        assert [(x["subject"], x["decision"], x["notice_version"]) for x in consents] == [
            ("teleconsultation", "given", TELECONSULTATION.version)]
        assert any(ev["action"] == "consent.record" for ev in json.loads(archive.read("audit.json")))
        index = archive.read("index.html").decode()
        assert doc_name in index and "Consentements" in index
        # no temporary archive stays behind, and the export is in the audit log
        assert not list((server.config.data_path / "exports").iterdir())
        assert [e.action for e in await server.clinic.practice.audit_export()][-1] == "record.export"
        assert (await server.clinic.get_document(document_id)).patient_id == patient_id

        # a practitioner without access gets the same 404 as for an unknown record
        await server.clinic.add_practitioner("other@example.org", "a long secret password", "Dr Other")
        other = Browserless(server.base_url)
        try:
            await other.login("other@example.org", "a long secret password")
            response, _ = await other.get_bytes(f"/records/{patient_id}/export")
            assert response.status == 404
        finally:
            await other.close()


async def test_erasure_waits_for_the_retention_date_then_removes_everything(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient_id = (await server.clinic.get_consultation(demo["consultation_id"])).patient_id
        await upload(demo["patient_link"], NOTE, "note.txt")
        await server.clinic.record_consent(demo["consultation_id"], "patient", "teleconsultation", "given",
                                           TELECONSULTATION.version)
        doctor = Browserless(server.base_url)  # a join pass points at the invitation: it goes too
        try:
            assert (await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])).status == 303
            assert (await doctor.get(f"/consultations/{demo['consultation_id']}/call"))[0].status == 303
        finally:
            await doctor.close()
        with pytest.raises(ErasureRefused) as refused:
            await server.clinic.erase_patient(patient_id, 7300, server.config.data_path)
        assert refused.value.until > datetime.date.today() + datetime.timedelta(days=7290)
        assert (await server.clinic.list_documents(patient_id=patient_id))  # nothing removed
        assert await server.clinic.erase_patient(patient_id, 0, server.config.data_path) == 1
        with pytest.raises(NotFound):
            await server.clinic.get_patient(patient_id)
        assert not (server.config.data_path / "documents" / demo["consultation_id"]).exists()
        assert await server.clinic.consents_of_patient(patient_id) == []
        assert sql(server, "SELECT * FROM join_pass") == []
        events = await server.clinic.practice.audit_export()
        assert (events[-1].action, events[-1].actor_kind, events[-1].patient_id) == ("patient.erase", "operator", patient_id)
        assert (await server.clinic.practice.audit_verify(server.config.audit_checkpoints_path)).ok


async def test_the_cli_refuses_erasure_before_the_date_and_says_which(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient_id = (await server.clinic.get_consultation(demo["consultation_id"])).patient_id
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[retention]\nrecord_days = 3650\n')
    cli = [sys.executable, "-m", "signaling.cli", "--log-level", "WARNING", "patient", "erase", "--config", str(config)]
    result = subprocess.run([*cli, "--patient", patient_id], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "kept until 20" in result.stderr and "Traceback" not in result.stderr
    unknown = subprocess.run([*cli, "--patient", "nobody"], capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode == 1 and "no such patient" in unknown.stderr


async def test_documents_of_every_kind_go_after_the_retention_period(tmp_path: Path) -> None:
    from helpers.practice import past, sql

    data = tmp_path / "data"
    async with running_server(data) as server:
        demo = await server.demo()
        old = await upload(demo["patient_link"], NOTE, "old.txt")
        new = await upload(demo["patient_link"], NOTE, "new.txt")
        sql(server, "UPDATE document SET created_at = ?, source = 'recording' WHERE id = ?", past(40), old)
    # the server sweeps at start with a retention set
    async with running_server(data, **{"documents.retention_days": 30}) as server:
        for _ in range(100):
            if any(e.action == "document.remove" for e in await server.clinic.practice.audit_export()):
                break
            await asyncio.sleep(0.05)
        assert [d.id for d in await server.clinic.list_documents(consultation_id=demo["consultation_id"])] == [new]
        assert not (data / "documents" / demo["consultation_id"] / old).exists()
        removed = [e for e in await server.clinic.practice.audit_export() if e.action == "document.remove"]
        assert [(e.document_id, e.actor_kind) for e in removed] == [(old, "system")]
