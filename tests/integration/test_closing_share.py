"""At closing, the practitioner picks which documents the patient's link gives; the mail names none (issue 19 item 5)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

from helpers.closing import closing_csrf, ended_consultation, pdf_bytes, upload
from helpers.practice import Browserless, body_of, link_in, smtp_server
from helpers.server import running_server


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def close_with(c: Browserless, token: str, csrf: str, body: str) -> tuple[int, dict[str, object]]:
    async with c.session.post(f"{c.base_url}/c/{token}/closing/close", data=body,
                              headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}) as r:
        return r.status, await r.json()


async def test_only_the_ticked_documents_reach_the_patient(tmp_path: Path) -> None:
    async with smtp_server() as (inbox, port):
        overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "none"}
        async with running_server(tmp_path / "data", **overrides) as server:
            demo, token = await ended_consultation(server)
            cid = demo["consultation_id"]
            doctor, patient = Browserless(server.base_url), Browserless(server.base_url)
            try:
                csrf = await closing_csrf(doctor, token)
                assert (await upload(doctor, token, "Compte rendu.pdf", pdf_bytes(), csrf)).status == 201
                assert (await upload(doctor, token, "Brouillon.pdf", pdf_bytes(), csrf)).status == 201
                await server.clinic.store_document(cid, "recording", "enregistrement.pdf", "system",
                                                   chunks(pdf_bytes()), max_bytes=1 << 20)
                await server.clinic.store_document(cid, "whiteboard", "tableau.pdf", "system",
                                                   chunks(pdf_bytes()), max_bytes=1 << 20)
                docs = {d.name: d.id for d in await server.clinic.list_documents(consultation_id=cid)}
                # each document has its box: imported ones ticked, recordings and board images not
                _, page = await doctor.get(f"/c/{token}/closing")
                assert page.count('data-testid="doc-share"') == 4
                for name, ticked in (("Compte rendu.pdf", True), ("Brouillon.pdf", True),
                                     ("enregistrement.pdf", False), ("tableau.pdf", False)):
                    box = page.split(f'data-testid="doc-share" data-document-id="{docs[name]}"', 1)[1].split(">", 1)[0]
                    assert ("checked" in box) is ticked, name
                # a made-up id or a malformed choice: refused, the act stays open
                for body in (json.dumps({"share": ["0" * 32]}), json.dumps({"share": "all"}), "not json"):
                    status, answer = await close_with(doctor, token, csrf, body)
                    assert status == 400 and answer["error"] == "bad-share", body
                assert (await server.clinic.get_consultation(cid)).state.value == "ended"

                chosen = [docs["Compte rendu.pdf"], docs["enregistrement.pdf"]]
                status, answer = await close_with(doctor, token, csrf, json.dumps({"share": chosen}))
                assert status == 200 and answer["documents"] == 2
                _, page = await doctor.get(f"/c/{token}/closing")  # the choice is kept, no longer editable
                assert page.count("checked disabled") == 2 and page.count(" disabled>") == 4

                (message,) = await inbox.wait(1)
                text = body_of(message) + str(message["Subject"])
                for secret in ("Compte rendu", "Brouillon", "enregistrement", "tableau", "Patient Démo"):
                    assert secret not in text
                path = link_in(message, server.base_url + "/d/").removeprefix(server.base_url)
                await patient.post(path, {"date_of_birth": "1980-01-01"}, csrf_from=path)
                _, page = await patient.get(path)
                assert page.count('data-testid="access-document"') == 2
                assert "Compte rendu.pdf" in page and "enregistrement.pdf" in page and "Brouillon" not in page
                for name in ("Brouillon.pdf", "tableau.pdf"):
                    r, _ = await patient.get_bytes(f"{path}/documents/{docs[name]}")
                    assert r.status == 404, name
                r, _ = await patient.get_bytes(f"{path}/documents/{docs['enregistrement.pdf']}")
                assert r.status == 200
            finally:
                await doctor.close()
                await patient.close()
