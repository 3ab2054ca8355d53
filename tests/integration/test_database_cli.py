"""The operator's database commands on a real PostgreSQL: check-config, migrate, copy-database."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from helpers.databases import PostgresServer, RedisServer, free_port, make

from clinic import Clinic, NetTest, Role
from clinic.migrations import MIGRATIONS
from signaling.cli import main

DAY = datetime.timedelta(days=1)
PASSWORD = "a long secret password"


def config_file(tmp_path: Path, url: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n\n[database]\nurl = "{url}"\n')
    return str(path)


async def one_chunk(data: bytes):  # type: ignore[no-untyped-def]
    yield data


async def fill(clinic: Clinic) -> dict[str, object]:
    """A small practice with a row in most tables."""
    practitioner = await clinic.add_practitioner("dr@example.org", PASSWORD, "Dr A")
    patient = await clinic.practice.create_patient(practitioner.id, "Jeanne", "j@example.org",
                                                   datetime.date(1970, 5, 17))
    consultation, _ = await clinic.schedule_consultation(patient.id, practitioner.id,
                                                         datetime.datetime.now(datetime.UTC))
    for i in range(3):
        await clinic.add_chat_message(consultation.id, "text", "patient", text=f"bonjour {i}")
    document = await clinic.store_document(consultation.id, "chat", "note.txt", "patient",
                                           one_chunk(b"hello, doctor"), max_bytes=1000)
    test = NetTest(verdict="fair", rtt_ms=12.3, loss_pct=0.1, up_kbps=600, down_kbps=800, relay=True)
    await clinic.save_readiness(consultation.id, Role.PATIENT, mic="on", camera="off", test=test)
    return {"patient": patient, "consultation": consultation.id, "document": document}


async def test_a_sqlite_site_copied_to_postgresql_keeps_everything(
    tmp_path: Path, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    target = make("postgresql", tmp_path, postgres_server)
    config = config_file(tmp_path, str(target.target))
    old = await Clinic.open(tmp_path / "data" / "teleconsult.sqlite3", invitation_lifetime=DAY)
    made = await fill(old)
    cid = str(made["consultation"])
    before = (await old.chat_history(cid, limit=10), await old.practice.audit_export(0, 1000),
              await old.get_readiness(cid))
    await old.close()

    assert main(["copy-database", "--config", config]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["copied"]["chat_message"] == 3 and report["copied"]["audit_event"] == len(before[1])
    assert "Jeanne" not in json.dumps(report)  # counts only

    new = await Clinic.open(str(target.target), invitation_lifetime=DAY, documents_dir=tmp_path / "data" / "documents")
    try:
        assert await new.verify_practitioner("dr@example.org", PASSWORD) is not None
        assert await new.get_patient(made["patient"].id) == made["patient"]  # type: ignore[attr-defined]
        after = (await new.chat_history(cid, limit=10), await new.practice.audit_export(0, 1000),
                 await new.get_readiness(cid))
        assert after == before
        (document,) = await new.list_documents(consultation_id=cid)
        assert document == made["document"]
        assert (await new.document_path(document)).read_bytes() == b"hello, doctor"
        # the audit numbering goes on after the copied entries
        await new.practice.audit("system", None, "mail.queue")
        last = (await new.practice.audit_export(before[1][-1].seq, 10))
        assert [e.seq for e in last] == [before[1][-1].seq + 1]
    finally:
        await new.close()

    # a second copy would mix two sites: refused, the target untouched
    assert main(["copy-database", "--config", config]) == 1
    err = capsys.readouterr().err
    assert "already holds data" in err and "Traceback" not in err
    assert target.rows("SELECT COUNT(*) FROM chat_message") == [(3,)]


def test_check_config_and_migrate_on_postgresql(
    tmp_path: Path, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    target = make("postgresql", tmp_path, postgres_server)
    config = config_file(tmp_path, str(target.target))
    assert main(["check-config", "--config", config]) == 0
    assert "reachable (server 1" in capsys.readouterr().out

    assert main(["migrate", "--config", config]) == 0
    n = len(MIGRATIONS)
    assert f"schema version {n} of {n} ({n} migrations applied)" in capsys.readouterr().out
    assert main(["migrate", "--config", config]) == 0
    assert "(0 migrations applied)" in capsys.readouterr().out
    assert "audit_event" in target.tables()

    down = tmp_path / "down"
    down.mkdir()
    unreachable = config_file(down, f"postgresql://tc:pw-never-shown@127.0.0.1:{free_port()}/tc")
    assert main(["check-config", "--config", unreachable]) == 1
    err = capsys.readouterr().err
    assert "cannot use PostgreSQL at 127.0.0.1:" in err and "pw-never-shown" not in err
    assert "Traceback" not in err
    assert main(["migrate", "--config", unreachable]) == 1


def test_copy_needs_a_postgresql_url_and_an_existing_file(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy-database", "--config", config_file(tmp_path, "")]) == 1
    assert "set [database] url" in capsys.readouterr().err
    assert main(["copy-database", "--config", config_file(tmp_path, "postgresql://127.0.0.1/x"),
                 "--from", str(tmp_path / "none.sqlite3")]) == 1
    assert "no SQLite database at" in capsys.readouterr().err


def test_a_bad_url_is_a_configuration_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", config_file(tmp_path, "mysql://x")]) == 2
    assert "'database.url' must be empty" in capsys.readouterr().err




def test_check_config_reaches_redis(tmp_path: Path, redis_server: RedisServer,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[cluster]\nredis_url = "{redis_server.url}"\n')
    assert main(["check-config", "--config", str(path)]) == 0
    assert f"Redis at 127.0.0.1:{redis_server.port}: reachable (server 7" in capsys.readouterr().out
    path.write_text(f'[cluster]\nredis_url = "redis://:pw-never-shown@127.0.0.1:{free_port()}/0"\n')
    assert main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "cannot use Redis at 127.0.0.1:" in err and "pw-never-shown" not in err and "Traceback" not in err
