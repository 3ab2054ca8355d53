"""Closing the act, the patient's email and document access, over real HTTP with a real SMTP server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
from pathlib import Path

from helpers.closing import (
    close,
    closed_with_link_no_wait,
    closing_csrf,
    ended_consultation,
    pdf_bytes,
    upload,
)
from helpers.practice import (
    Browserless,
    Inbox,
    body_of,
    link_in,
    past,
    smtp_server,
    sql,
)
from helpers.server import Running, free_port, running_server

from clinic import ConsultationState, Stage

PASSWORD = "correct horse battery"
BIRTH = "1970-05-17"


async def test_closing_streams_documents_sends_the_mail_and_the_patient_gets_them(tmp_path: Path) -> None:
    async with smtp_server() as (inbox, port):
        overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "none",
                     "documents.max_upload_bytes": 1024 * 1024}
        async with running_server(tmp_path / "data", **overrides) as server:
            demo, token = await ended_consultation(server)
            doctor, patient = Browserless(server.base_url), Browserless(server.base_url)
            try:
                csrf = await closing_csrf(doctor, token)
                # no CSRF token: refused, nothing stored
                async with doctor.session.post(f"{server.base_url}/c/{token}/closing/documents", data=b"%PDF-1.4") as r:
                    assert r.status == 403
                report, prescription = pdf_bytes(), pdf_bytes(3000)
                r = await upload(doctor, token, "Compte rendu.pdf", report, csrf)
                assert r.status == 201
                r = await upload(doctor, token, "../../etc/Ordonnance.pdf", prescription, csrf)
                assert r.status == 201
                r = await upload(doctor, token, "à retirer.txt", b"removed before closing\n", csrf)
                assert r.status == 201
                # too large: refused with a clear message, nothing left
                r = await upload(doctor, token, "big.bin", os.urandom(1024 * 1024 + 1), csrf)
                assert r.status == 413
                # the patient's link cannot use the closing page
                patient_token = demo["patient_link"].rsplit("/", 1)[1]
                r, _ = await patient.get(f"/c/{patient_token}/closing")
                assert r.status == 404
                r = await upload(patient, patient_token, "x.pdf", b"%PDF-1.4", await patient.csrf("/login"))
                assert r.status in (403, 404)
                _, page = await doctor.get(f"/c/{token}/closing")
                assert page.count('data-testid="doc-item"') == 3
                assert "Ordonnance.pdf" in page and "../" not in page
                removable = [d.id for d in await server.clinic.list_documents(consultation_id=demo["consultation_id"])
                             if d.name == "à retirer.txt"]
                async with doctor.session.delete(f"{server.base_url}/c/{token}/closing/documents/{removable[0]}",
                                                 headers={"X-CSRF-Token": csrf}) as r:
                    assert r.status == 200
                docs = await server.clinic.list_documents(consultation_id=demo["consultation_id"])
                assert sorted(d.name for d in docs) == ["Compte rendu.pdf", "Ordonnance.pdf"]
                assert {d.media_type for d in docs} == {"application/pdf"}

                status, body = await close(doctor, token, csrf)
                assert status == 200 and body == {"closed": True, "documents": 2, "mail_queued": True}
                status, body = await close(doctor, token, csrf)
                assert status == 409 and body["error"] == "closed"
                consultation = await server.clinic.get_consultation(demo["consultation_id"])
                assert consultation.state is ConsultationState.CLOSED
                r = await upload(doctor, token, "late.pdf", pdf_bytes(), csrf)
                assert r.status == 409

                (message,) = await inbox.wait(1)
                assert message["To"] == "patient@teleconsult.invalid"
                text = body_of(message)
                for secret in ("Compte rendu", "Ordonnance", "Patient Démo"):
                    assert secret not in text  # no document name, not the patient's name
                assert "Dr Démo" in text  # the practitioner's, so the patient recognises the mail (issue 20)
                link = link_in(message, server.base_url + "/d/")
                path = link.removeprefix(server.base_url)
                token_hash = hashlib.sha256(path.rsplit("/", 1)[1].encode()).hexdigest()
                assert sql(server, "SELECT 1 FROM patient_link WHERE token_hash = ?", token_hash)  # stored hashed

                # the patient: date of birth first
                r, page = await patient.get(path)
                assert r.status == 200 and 'data-testid="access-birth"' in page and "Ordonnance" not in page
                r, page = await patient.post(path, {"date_of_birth": "1980-01-02"}, csrf_from=path)
                assert r.status == 403 and 'data-testid="attempts-left">4<' in page
                r, page = await patient.post(path, {"date_of_birth": "not a date"}, csrf_from=path)
                assert r.status == 400
                r, _ = await patient.get(f"{path}/documents/{docs[0].id}")
                assert r.status == 303  # no session yet: back to the form
                r, _ = await patient.post(path, {"date_of_birth": "1980-01-01"}, csrf_from=path)
                assert r.status == 303
                cookie = r.cookies["tc_doc"]
                assert cookie["httponly"] is True and cookie["path"] == path
                r, page = await patient.get(path)
                assert page.count('data-testid="access-document"') == 2
                for doc in docs:
                    r, data = await patient.get_bytes(f"{path}/documents/{doc.id}?download=1")
                    assert r.status == 200
                    assert data == (report if doc.name == "Compte rendu.pdf" else prescription)
                    assert r.headers["Content-Disposition"].startswith("attachment;")
                    assert r.headers["X-Content-Type-Options"] == "nosniff"
                    assert r.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
                    assert r.headers["Cache-Control"] == "private, no-store"
                r, _ = await patient.get_bytes(f"{path}/documents/{docs[0].id}")
                assert r.headers["Content-Type"] == "application/pdf"
                assert r.headers["Content-Disposition"].startswith("inline;")
                # Range works (audio and video seek)
                r, part = await patient.get_bytes(f"{path}/documents/{docs[0].id}", headers={"Range": "bytes=0-7"})
                assert r.status == 206 and part == report[:8]
                # a document of another consultation is not reachable through this link
                r, _ = await patient.get(f"{path}/documents/{'0' * 32}")
                assert r.status == 404
                # the practitioner sees when the documents were opened
                opened = sql(server, "SELECT first_opened_at, last_opened_at FROM patient_link")
                assert opened[0]["first_opened_at"] and opened[0]["last_opened_at"] >= opened[0]["first_opened_at"]
                actions = [row["action"] for row in sql(server, "SELECT action FROM audit_event ORDER BY seq")]
                for action in ("document.import", "document.remove", "consultation.close", "patient_link.create",
                               "mail.queue", "patient_link.birth_date_failed", "patient_link.open", "document.download",
                               "document.view"):
                    assert action in actions, actions
            finally:
                await doctor.close()
                await patient.close()


async def test_closing_without_documents_sends_nothing_and_needs_an_ended_call(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        token = demo["practitioner_link"].rsplit("/", 1)[1]
        doctor = Browserless(server.base_url)
        try:
            csrf = await closing_csrf(doctor, token)
            status, body = await close(doctor, token, csrf)
            assert status == 409 and body["error"] == "not-ended"
            await server.clinic.update_consultation(demo["consultation_id"], state=ConsultationState.ENDED,
                                                    practitioner_stage=Stage.ENDED, patient_stage=Stage.ENDED)
            status, body = await close(doctor, token, csrf)
            assert status == 200 and body == {"closed": True, "documents": 0, "mail_queued": False}
            assert sql(server, "SELECT * FROM mail_message") == []
        finally:
            await doctor.close()


async def _closed_with_link(server: Running, inbox: Inbox | None = None) -> tuple[str, str]:
    """Close the demo act with one document; returns (path of the patient's link, document id)."""
    demo, token = await ended_consultation(server)
    doctor = Browserless(server.base_url)
    try:
        csrf = await closing_csrf(doctor, token)
        r = await upload(doctor, token, "cr.pdf", pdf_bytes(), csrf)
        assert r.status == 201
        status, _ = await close(doctor, token, csrf)
        assert status == 200
    finally:
        await doctor.close()
    doc = (await server.clinic.list_documents(consultation_id=demo["consultation_id"]))[0]
    if inbox is not None:
        (message,) = await inbox.wait(1)
        return link_in(message, server.base_url + "/d/").removeprefix(server.base_url), doc.id
    # no SMTP: the .eml file in the outbox
    for _ in range(200):
        files = list(server.config.outbox_path.glob("*.eml"))
        if files:
            text = files[0].read_text()
            assert "Subject:" in text and "To: patient@teleconsult.invalid" in text
            start = text.index(server.base_url + "/d/")
            return text[start:].split()[0].removeprefix(server.base_url), doc.id
        await asyncio.sleep(0.05)
    raise AssertionError("no .eml in the outbox")


async def test_wrong_birth_dates_lock_the_link_and_attempts_are_rate_limited(tmp_path: Path) -> None:
    overrides = {"patient_access.max_failures": 3, "patient_access.attempts_per_minute": 10}
    async with running_server(tmp_path / "data", **overrides) as server:
        path, _ = await _closed_with_link(server)
        patient = Browserless(server.base_url)
        try:
            for left in (2, 1):
                r, page = await patient.post(path, {"date_of_birth": "2000-01-01"}, csrf_from=path)
                assert r.status == 403 and f'data-testid="attempts-left">{left}<' in page
            r, page = await patient.post(path, {"date_of_birth": "2000-01-01"}, csrf_from=path)
            assert r.status == 410  # locked
            # locked for good: even the right date is refused now
            r, _ = await patient.get(path)
            assert r.status == 410
            assert sql(server, "SELECT locked_at FROM patient_link")[0]["locked_at"]
        finally:
            await patient.close()
    async with running_server(tmp_path / "data2", **{"patient_access.attempts_per_minute": 2}) as server:
        path, _ = await _closed_with_link(server)
        patient = Browserless(server.base_url)
        try:
            for _ in range(2):
                r, _ = await patient.post(path, {"date_of_birth": "2000-01-01"}, csrf_from=path)
                assert r.status == 403
            r, page = await patient.post(path, {"date_of_birth": "1980-01-01"}, csrf_from=path)
            assert r.status == 429 and 'data-error="access.too-many"' in page
        finally:
            await patient.close()


async def test_expired_and_revoked_links_are_refused(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        path, doc_id = await _closed_with_link(server)
        patient = Browserless(server.base_url)
        try:
            r, _ = await patient.post(path, {"date_of_birth": "1980-01-01"}, csrf_from=path)
            assert r.status == 303
            r, _ = await patient.get_bytes(f"{path}/documents/{doc_id}")
            assert r.status == 200
            # the practitioner revokes it from the record page
            doctor = Browserless(server.base_url)
            demo = await server.demo()
            r = await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])
            patient_id = sql(server, "SELECT patient_id FROM patient_link")[0]["patient_id"]
            link_id = sql(server, "SELECT id FROM patient_link")[0]["id"]
            r, page = await doctor.get(f"/records/{patient_id}")
            assert 'data-state="active"' in page and 'data-first-opened="' in page
            r, _ = await doctor.post(f"/records/{patient_id}/links/{link_id}/revoke", {}, csrf_from=f"/records/{patient_id}")
            assert r.status == 303
            _, page = await doctor.get(f"/records/{patient_id}")
            assert 'data-state="revoked"' in page
            await doctor.close()
            r, page = await patient.get_bytes(f"{path}/documents/{doc_id}")  # even with its session
            assert r.status == 410
            r, _ = await patient.get(path)
            assert r.status == 410
            # a forged or malformed link is a plain 404
            for bad in ("/d/" + "A" * 43, "/d/%00", "/d/" + "x" * 500):
                r, _ = await patient.get(bad)
                assert r.status == 404
        finally:
            await patient.close()
    async with running_server(tmp_path / "data2") as server:
        path, _ = await _closed_with_link(server)
        sql(server, "UPDATE patient_link SET expires_at = ?", past(1))
        patient = Browserless(server.base_url)
        try:
            r, page = await patient.get(path)
            assert r.status == 410 and 'data-status="410"' in page
            r, _ = await patient.post(path, {"date_of_birth": "1980-01-01"}, csrf_from="/login")
            assert r.status == 410
        finally:
            await patient.close()


async def test_smtp_down_at_closing_then_back_the_mail_goes_out_later(tmp_path: Path) -> None:
    port = free_port()
    overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "none",
                 "mail.retry_base_seconds": 0.2, "mail.retry_max_seconds": 0.5}
    async with running_server(tmp_path / "data", **overrides) as server:
        demo, token = await ended_consultation(server)
        doctor = Browserless(server.base_url)
        try:
            csrf = await closing_csrf(doctor, token)
            assert (await upload(doctor, token, "cr.pdf", pdf_bytes(), csrf)).status == 201
            status, body = await close(doctor, token, csrf)  # nothing listens on the SMTP port
            assert status == 200 and body["mail_queued"] is True
            for _ in range(200):
                rows = sql(server, "SELECT * FROM mail_message WHERE kind = 'documents'")
                if rows and rows[0]["attempts"] >= 2:
                    break
                await asyncio.sleep(0.05)
            (row,) = rows
            assert row["state"] == "queued" and row["attempts"] >= 2
            assert row["last_error"] and "@" not in row["last_error"]
            # the practitioner sees it on the record, the operator on the operator listener's /mail/status
            r = await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])
            patient_id = row["patient_id"]
            _, page = await doctor.get(f"/records/{patient_id}")
            assert 'data-testid="mail-item"' in page and 'data-state="queued"' in page
            async with doctor.session.get(server.operator_url + "/mail/status") as r:
                status_json = await r.json()
            async with doctor.session.get(server.base_url + "/mail/status") as r:
                assert r.status == 404  # never on the public port
            assert status_json["counts"]["queued"] >= 1
            assert "recipient" not in json.dumps(status_json) and "patient@" not in json.dumps(status_json)
            # the mail server comes back: the message goes out, once
            async with smtp_server(port) as (inbox, _):
                (message,) = await inbox.wait(1, timeout=20)
                assert "/d/" in body_of(message)
                for _ in range(100):
                    rows = sql(server, "SELECT state, body FROM mail_message WHERE kind = 'documents'")
                    if rows[0]["state"] == "sent":
                        break
                    await asyncio.sleep(0.05)
                assert rows[0]["state"] == "sent" and rows[0]["body"] == ""  # the link is not kept once sent
                await asyncio.sleep(0.5)
                assert len(inbox.messages) == 1
        finally:
            await doctor.close()


async def test_a_message_gives_up_after_max_attempts(tmp_path: Path) -> None:
    overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": free_port(), "mail.smtp.security": "none",
                 "mail.retry_base_seconds": 0.05, "mail.retry_max_seconds": 0.1, "mail.max_attempts": 3}
    async with running_server(tmp_path / "data", **overrides) as server:
        await closed_with_link_no_wait(server)
        for _ in range(200):
            rows = sql(server, "SELECT state, attempts FROM mail_message")
            if rows and rows[0]["state"] == "failed":
                break
            await asyncio.sleep(0.05)
        assert rows[0]["state"] == "failed" and rows[0]["attempts"] == 3


async def test_record_documents_visible_to_the_care_team_only(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        path, doc_id = await _closed_with_link(server)
        demo = await server.demo()
        await server.clinic.add_practitioner("b@example.org", PASSWORD, "Dr B")
        await server.clinic.add_practitioner("c@example.org", PASSWORD, "Dr C")
        patient_id = sql(server, "SELECT patient_id FROM patient_link")[0]["patient_id"]
        a, b, c = Browserless(server.base_url), Browserless(server.base_url), Browserless(server.base_url)
        try:
            await a.login(demo["practitioner"]["email"], demo["practitioner"]["password"])
            await b.login("b@example.org", PASSWORD)
            await c.login("c@example.org", PASSWORD)
            r, _ = await a.post(f"/records/{patient_id}/access", {"email": "b@example.org"}, csrf_from=f"/records/{patient_id}")
            assert r.status == 303
            _, page = await b.get(f"/records/{patient_id}")
            assert 'data-testid="record-document"' in page and "cr.pdf" in page
            r, data = await b.get_bytes(f"/records/{patient_id}/documents/{doc_id}?download=1")
            assert r.status == 200 and data.startswith(b"%PDF") and r.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
            for url in (f"/records/{patient_id}", f"/records/{patient_id}/documents/{doc_id}",
                        f"/records/{patient_id}/documents/{doc_id}?download=1"):
                r, _ = await c.get(url)
                assert r.status == 404
            # nor through a record C does have: the document must belong to that record
            other = await server.clinic.practice.create_patient(
                (await server.clinic.find_practitioner("c@example.org")).id, "Autre", "autre@example.org",  # type: ignore[union-attr]
                __import__("datetime").date(1990, 1, 1))
            r, _ = await c.get(f"/records/{other.id}/documents/{doc_id}")
            assert r.status == 404
            views = sql(server, "SELECT actor_id FROM audit_event WHERE action = 'document.download'")
            assert len(views) == 1
        finally:
            for x in (a, b, c):
                await x.close()


async def test_a_file_shared_in_the_chat_is_enough_for_the_mail(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo, token = await ended_consultation(server)
        patient_token = demo["patient_link"].rsplit("/", 1)[1]
        doctor, patient = Browserless(server.base_url), Browserless(server.base_url)
        try:
            shared = pdf_bytes(5000)
            # the patient shared a file in the chat during the call (issue 6's upload)
            async with patient.session.post(f"{server.base_url}/c/{patient_token}/files?name=analyses.pdf",
                                            data=io.BytesIO(shared)) as r:
                assert r.status == 201
            csrf = await closing_csrf(doctor, token)
            _, page = await doctor.get(f"/c/{token}/closing")
            assert "analyses.pdf" in page and 'data-testid="doc-remove"' not in page  # listed, not removable here
            status, body = await close(doctor, token, csrf)
            assert status == 200 and body == {"closed": True, "documents": 1, "mail_queued": True}
            path, _ = await _outbox_link(server)
            r, _ = await patient.post(path, {"date_of_birth": "1980-01-01"}, csrf_from=path)
            assert r.status == 303
            doc = (await server.clinic.list_documents(consultation_id=demo["consultation_id"]))[0]
            r, data = await patient.get_bytes(f"{path}/documents/{doc.id}?download=1")
            assert r.status == 200 and data == shared
        finally:
            await doctor.close()
            await patient.close()


async def test_an_import_cut_off_midway_leaves_nothing(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo, token = await ended_consultation(server)
        doctor = Browserless(server.base_url)
        try:
            csrf = await closing_csrf(doctor, token)
            reader, writer = await asyncio.open_connection("127.0.0.1", server.config.http.port)
            cookies = "; ".join(f"{c.key}={c.value}" for c in doctor.session.cookie_jar)
            writer.write((f"POST /c/{token}/closing/documents?name=cut.pdf HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"X-CSRF-Token: {csrf}\r\nCookie: {cookies}\r\n"
                          "Content-Length: 500000\r\n\r\n").encode() + b"%PDF-1.4\n" + os.urandom(100000))
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.close()
            for _ in range(100):
                await asyncio.sleep(0.05)
                if not list((server.config.data_path / "documents").rglob("*")) or all(
                        p.is_dir() for p in (server.config.data_path / "documents").rglob("*")):
                    break
            assert await server.clinic.list_documents(consultation_id=demo["consultation_id"]) == []
            assert [p for p in (server.config.data_path / "documents").rglob("*") if p.is_file()] == []
            del reader
        finally:
            await doctor.close()


async def _outbox_link(server: Running) -> tuple[str, None]:
    for _ in range(200):
        files = list(server.config.outbox_path.glob("*.eml"))
        if files:
            text = files[0].read_text()
            start = text.index(server.base_url + "/d/")
            return text[start:].split()[0].removeprefix(server.base_url), None
        await asyncio.sleep(0.05)
    raise AssertionError("no .eml in the outbox")


async def test_a_file_shared_in_the_chat_is_read_by_the_care_team_only(tmp_path: Path) -> None:
    # issue 6: practitioners with access to the record read the chat's files; one without gets 404
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient_token = demo["patient_link"].rsplit("/", 1)[1]
        await server.clinic.add_practitioner("stranger@example.org", PASSWORD, "Dr Stranger")
        patient, doctor, stranger = (Browserless(server.base_url) for _ in range(3))
        try:
            shared = pdf_bytes(3000)
            async with patient.session.post(f"{server.base_url}/c/{patient_token}/files?name=photo.pdf",
                                            data=io.BytesIO(shared)) as r:
                assert r.status == 201
            doc = (await server.clinic.list_documents(consultation_id=demo["consultation_id"]))[0]
            assert doc.source == "chat"
            patient_id = (await server.clinic.get_consultation(demo["consultation_id"])).patient_id
            url = f"/records/{patient_id}/documents/{doc.id}?download=1"
            r, data = await doctor.get_bytes(url)  # not logged in yet
            assert r.status != 200 and data != shared
            await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])
            r, data = await doctor.get_bytes(url)
            assert r.status == 200 and data == shared
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            await stranger.login("stranger@example.org", PASSWORD)
            for path in (f"/records/{patient_id}", url):
                r, _ = await stranger.get(path)
                assert r.status == 404
        finally:
            for x in (patient, doctor, stranger):
                await x.close()
