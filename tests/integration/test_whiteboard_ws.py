"""The whiteboard over the real WebSocket and HTTP: drawing, bad input, limits, restart, uploads."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from helpers.pdfgen import write_pdf
from helpers.server import Running, running_server
from helpers.ws_client import Client, in_call

LIMITS = {
    "whiteboard.max_points_per_stroke": 50,
    "whiteboard.max_strokes": 3,
    "whiteboard.max_message_bytes": 4096,
    "whiteboard.max_upload_bytes": 200_000,
    "whiteboard.max_pdf_pages": 2,
}


def stroke(sid: str, points: list[float], *, end: bool = True, **extra: Any) -> dict[str, Any]:
    return {"type": "whiteboard-stroke", "stroke": sid, "page": 0, "color": "#c62828", "width": 0.01,
            "points": points, "end": end, **extra}


async def send(client: Client, msg: dict[str, Any]) -> None:
    await client.ws.send_str(json.dumps(msg))


async def saved(server: Running, demo: dict[str, Any]) -> dict[str, Any]:
    """The board as stored in the database (not the hub's memory)."""
    board = await server.clinic.load_board(demo["consultation_id"], server.hubs.find(demo["consultation_id"]).whiteboard.board.limits)
    return {"open": board.is_open, "page": board.page, "strokes": sorted(s.id for s in board.visible_strokes()),
            "hidden": sorted(i for i, v in board.visible.items() if not v)}


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    async with running_server(tmp_path / "data", **LIMITS) as running:
        yield running


async def test_strokes_stream_to_the_other_side_and_are_saved(server: Running) -> None:
    demo, doctor, patient = await in_call(server)
    await send(doctor, {"type": "whiteboard-open", "open": True})
    for c in (doctor, patient):
        assert (await c.recv("whiteboard-changes"))["open"] is True

    # two chunks while drawing: the patient gets each as it comes
    await send(doctor, stroke("a1", [0.1, 0.1, 0.2, 0.2], end=False))
    live = await patient.recv("whiteboard-live")
    assert (live["stroke"], live["author"], live["points"], live["end"]) == ("a1", "practitioner", [0.1, 0.1, 0.2, 0.2], False)
    await send(doctor, stroke("a1", [0.3, 0.3]))
    assert (await patient.recv("whiteboard-live"))["points"] == [0.3, 0.3]
    for c in (doctor, patient):
        changes = await c.recv("whiteboard-changes")
        assert [s["id"] for s in changes["add"]] == ["a1"]
        assert changes["add"][0]["points"] == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    assert changes["can_undo"] is False  # the patient's own history is empty
    assert (await saved(server, demo))["strokes"] == ["a1"]

    # the patient's undo has nothing of its own to undo: refused, the stroke stays
    await send(patient, {"type": "whiteboard-undo"})
    error = await patient.recv("error")
    assert (error["code"], error["ref_type"]) == ("out-of-order", "whiteboard-undo")
    assert (await saved(server, demo))["strokes"] == ["a1"]
    # the practitioner's undo removes it on both sides
    await send(doctor, {"type": "whiteboard-undo"})
    for c in (doctor, patient):
        assert (await c.recv("whiteboard-changes"))["remove"] == ["a1"]
    assert (await saved(server, demo))["strokes"] == []
    for c in (doctor, patient):
        await c.close()


@pytest.mark.parametrize(
    ("msg", "code", "names"),
    [
        (stroke("b1", [0.1, 1.5]), "bad-message", "between 0 and 1"),
        (stroke("b1", [0.1, -0.2]), "bad-message", "between 0 and 1"),
        (stroke("b1", [0.1, 0.2, 0.3]), "bad-message", "pairs"),
        (stroke("b1", [0.1, "0.2"]), "bad-message", "number"),
        (stroke("b1", [[0.1, 0.2]]), "bad-message", "number"),
        (stroke("b1", [0.1, True]), "bad-message", "number"),
        (stroke("b1", []), "bad-message", "needs points"),
        (stroke("b 1", [0.1, 0.2]), "bad-message", "stroke id"),
        (stroke("x" * 41, [0.1, 0.2]), "bad-message", "stroke id"),
        (stroke("b1", [0.1, 0.2], color="red"), "bad-message", "colour"),
        (stroke("b1", [0.1, 0.2], width=0.5), "bad-message", "width"),
        (stroke("b1", [0.1, 0.2], width=True), "bad-message", "width"),
        (stroke("b1", [0.1, 0.2], page=3), "bad-message", "page"),
        (stroke("b1", [0.1, 0.2], page=0.0), "bad-message", "page"),
        (stroke("b1", [0.1, 0.2], extra=1), "bad-message", "extra"),
        ({"type": "whiteboard-stroke", "stroke": "b1"}, "bad-message", "missing"),
        ({"type": "whiteboard-erase", "strokes": ["nope"]}, "bad-message", "no such stroke"),
        ({"type": "whiteboard-erase", "strokes": [1]}, "bad-message", "stroke ids"),
        ({"type": "whiteboard-erase", "strokes": []}, "bad-message", "stroke ids"),
        ({"type": "whiteboard-page", "page": 1}, "bad-message", "page"),
        ({"type": "whiteboard-page", "page": -1}, "bad-message", "page"),
        ({"type": "whiteboard-redo"}, "out-of-order", "nothing to redo"),
        ({"type": "pointer", "x": 2, "y": 0.5}, "bad-message", "between 0 and 1"),
        ({"type": "pointer", "x": None, "y": 0.5}, "bad-message", "both"),
        ({"type": "pointer", "x": "1", "y": 0.5}, "bad-message", "pointer.x"),
        ({"type": "whiteboard-save"}, "forbidden", "practitioner"),
        (stroke("b1", [0.5] * 1200), "too-large", "4096"),
    ],
)
async def test_a_bad_drawing_message_gets_an_error_and_changes_nothing(
        server: Running, msg: dict[str, Any], code: str, names: str) -> None:
    demo, doctor, patient = await in_call(server)
    await send(doctor, {"type": "whiteboard-open", "open": True})
    await send(doctor, stroke("keep", [0.4, 0.4, 0.6, 0.6]))
    for c in (doctor, patient):
        await c.recv("whiteboard-changes")
        await c.recv("whiteboard-changes")
    before = await saved(server, demo)
    memory_before = server.hubs.find(demo["consultation_id"]).whiteboard.full(patient_role())

    await send(patient, {**msg, "id": "m1"})
    error = await patient.recv("error")
    # ref_id when the message could be read as a whiteboard message (not for type errors)
    assert (error["code"], error.get("ref_id", "m1")) == (code, "m1"), error
    assert names in error["message"], error
    assert await saved(server, demo) == before
    assert server.hubs.find(demo["consultation_id"]).whiteboard.full(patient_role()) == memory_before
    # nothing reached the other side, and the session goes on: a good stroke still works
    await send(patient, stroke("after", [0.2, 0.2]))
    changes = await doctor.recv("whiteboard-changes")
    assert [s["id"] for s in changes["add"]] == ["after"]
    for c in (doctor, patient):
        await c.close()


def patient_role() -> Any:
    from clinic import Role
    return Role.PATIENT


async def test_limits_points_per_stroke_and_strokes_per_board(server: Running) -> None:
    demo, doctor, patient = await in_call(server)
    await send(doctor, {"type": "whiteboard-open", "open": True})
    await patient.recv("whiteboard-changes")
    # 40 points, then 20 more: past the limit of 50, refused; the 40 stay and the stroke can end
    await send(doctor, stroke("long", [0.5] * 80, end=False))
    await send(doctor, stroke("long", [0.5] * 40, end=False, id="over"))
    error = await doctor.recv("error")
    assert (error["code"], error["ref_id"]) == ("bad-message", "over") and "50 points" in error["message"]
    await send(doctor, stroke("long", [0.6, 0.6]))
    changes = await patient.recv("whiteboard-changes")
    assert len(changes["add"][0]["points"]) == 82
    # the board holds 3 strokes: the 4th is refused, an undo makes room again
    await send(doctor, stroke("s2", [0.1, 0.1]))
    await send(doctor, stroke("s3", [0.2, 0.2]))
    await send(doctor, stroke("s4", [0.3, 0.3], id="full"))
    error = await doctor.recv("error")
    assert (error["code"], error["ref_id"]) == ("bad-message", "full") and "at most 3 strokes" in error["message"]
    assert (await saved(server, demo))["strokes"] == ["long", "s2", "s3"]
    await send(doctor, {"type": "whiteboard-undo"})
    await send(doctor, stroke("s4", [0.3, 0.3]))
    await wait_saved(server, demo, ["long", "s2", "s4"])
    for c in (doctor, patient):
        await c.close()


async def wait_saved(server: Running, demo: dict[str, Any], strokes: list[str]) -> None:
    for _ in range(100):
        if (await saved(server, demo))["strokes"] == sorted(strokes):
            return
        await asyncio.sleep(0.05)
    assert (await saved(server, demo))["strokes"] == sorted(strokes)


async def test_nothing_is_drawn_outside_the_call_or_on_a_closed_board(server: Running) -> None:
    demo = await server.demo()
    doctor = await Client.open(demo["practitioner_link"])
    await send(doctor, {"type": "whiteboard-open", "open": True})
    error = await doctor.recv("error")
    assert error["code"] == "out-of-order" and "call" in error["message"]
    patient = await Client.open(demo["patient_link"])
    await doctor.send(type="join")
    await patient.send(type="ready")
    await doctor.state(me="in_call")
    await send(doctor, stroke("c1", [0.1, 0.1]))
    error = await doctor.recv("error")
    assert error["code"] == "out-of-order" and "closed" in error["message"]
    await send(doctor, {"type": "pointer", "x": 0.5, "y": 0.5})
    assert (await doctor.recv("error"))["code"] == "out-of-order"
    for c in (doctor, patient):
        await c.close()


async def test_the_board_survives_a_server_restart_with_each_sides_history(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as first:
        demo, doctor, patient = await in_call(first)
        await send(doctor, {"type": "whiteboard-open", "open": True})
        await send(doctor, stroke("d1", [0.1, 0.1, 0.2, 0.2]))
        await send(patient, stroke("p1", [0.5, 0.5, 0.6, 0.6]))
        await send(patient, stroke("p2", [0.7, 0.7]))
        await send(patient, {"type": "whiteboard-undo"})
        # a stroke in progress when the drawer leaves is kept as drawn so far
        await send(doctor, stroke("d2", [0.3, 0.3, 0.4, 0.4], end=False))
        await patient.recv("whiteboard-live")
        for c in (doctor, patient):
            await c.close()
    async with running_server(tmp_path / "data") as second:
        link = demo["patient_link"].replace(first.base_url, second.base_url)
        patient = await Client.open(link)
        board = await patient.recv("whiteboard")
        assert board["open"] is True
        assert sorted(s["id"] for s in board["strokes"]) == ["d1", "d2", "p1"]
        assert (board["can_undo"], board["can_redo"]) == (True, True)
        # still in the call after the restart; redo and undo still act on the patient's own strokes only
        await send(patient, {"type": "whiteboard-redo"})
        assert [s["id"] for s in (await patient.recv("whiteboard-changes"))["add"]] == ["p2"]
        await send(patient, {"type": "whiteboard-undo"})
        await send(patient, {"type": "whiteboard-undo"})
        await patient.recv("whiteboard-changes")
        changes = await patient.recv("whiteboard-changes")
        assert changes["remove"] == ["p1"] and changes["can_undo"] is False
        board = second.hubs.find(demo["consultation_id"]).whiteboard.board
        assert sorted(s.id for s in board.visible_strokes()) == ["d1", "d2"]
        await patient.close()


async def test_pointer_is_relayed_with_the_role_rate_limited_and_hidden_on_leave(server: Running) -> None:
    demo, doctor, patient = await in_call(server)
    await send(doctor, {"type": "whiteboard-open", "open": True})
    await send(patient, {"type": "pointer", "x": 0.25, "y": 0.75})
    pointer = await doctor.recv("pointer")
    assert (pointer["role"], pointer["x"], pointer["y"], pointer["sheet"]) == ("patient", 0.25, 0.75, "blank")
    # a burst far over 30 a second: most are dropped (never an error)
    start = time.monotonic()
    for i in range(200):
        await send(patient, {"type": "pointer", "x": i / 200, "y": 0.5})
    elapsed = time.monotonic() - start
    await send(patient, {"type": "pointer", "x": None, "y": None})  # leaving always goes through
    received = 0
    while True:
        msg = await doctor.recv("pointer")
        if msg["x"] is None:
            break
        received += 1
    allowed = 30 * (int(elapsed) + 2)  # at most 30 in any second
    print(f"pointer burst: 200 sent in {elapsed * 1000:.0f} ms, {received} relayed")
    assert 1 <= received <= min(allowed, 199), (received, elapsed)
    assert await saved(server, demo) == {"open": True, "page": 0, "strokes": [], "hidden": []}  # never stored
    # the patient leaves: the practitioner's view of its pointer is hidden
    await patient.close()
    msg = await doctor.recv("pointer")
    assert (msg["role"], msg["x"]) == ("patient", None)
    await doctor.close()


def png_bytes(width: int, height: int) -> bytes:
    image = np.full((height, width, 3), 255, np.uint8)
    image[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = (0, 0, 0)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return bytes(data.tobytes())


async def post(link: str, body: bytes, content_type: str = "application/octet-stream") -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{link}/whiteboard/background", data=body, headers={"Content-Type": content_type}) as r:
            return r.status, await r.json()


async def test_background_upload_refuses_bad_files_and_serves_good_pages(server: Running, tmp_path: Path) -> None:
    demo = await server.demo()
    # outside the call: refused
    status, body = await post(demo["patient_link"], png_bytes(40, 30), "image/png")
    assert (status, body["error"]) == (409, "out-of-order")
    demo, doctor, patient = await in_call(server)
    link = demo["patient_link"]

    bad = [
        (b"just some text, labelled as an image", "image/png", 415, "bad-type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png", 415, "bad-type"),  # a PNG signature, then garbage
        (b"%PDF-1.4\n garbage", "application/pdf", 415, "bad-type"),
        (write_pdf(tmp_path / "3.pdf", [(0, 0, 10, 10)] * 3).read_bytes(), "application/pdf", 415, "bad-type"),
        (b"x" * 200_001, "image/png", 413, "too-large"),
        (b"", "image/png", 400, "bad-message"),
    ]
    for data, label, want_status, code in bad:
        status, body = await post(link, data, label)
        assert (status, body["error"]) == (want_status, code), (label, data[:20], body)
    assert server.hubs.find(demo["consultation_id"]).whiteboard.board.background is None
    folder = server.config.data_path / "whiteboard" / demo["consultation_id"]
    assert not [p for p in folder.rglob("*") if p.is_file()], "a refused upload leaves nothing on disk"

    # a good image, labelled wrongly: the bytes decide
    status, body = await post(link, png_bytes(400, 200), "text/plain")
    assert status == 200, body
    background = body["background"]
    assert (background["kind"], background["pages"], background["sizes"]) == ("image", 1, [[400, 200]])
    for c in (doctor, patient):
        changes = await c.recv("whiteboard-changes")
        assert changes["background"]["id"] == background["id"] and changes["open"] is True
        assert changes["sheet"] == f"{background['id']}/0"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{link}/whiteboard/{background['id']}/0.png") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "image/png"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            page = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert page.shape == (200, 400, 3) and page[100, 200].max() < 50 and page[10, 10].min() > 200
        # no such page, or another consultation's link: 404
        async with http.get(f"{link}/whiteboard/{background['id']}/1.png") as r:
            assert r.status == 404
        other = await server.demo()
        async with http.get(f"{other['patient_link']}/whiteboard/{background['id']}/0.png") as r:
            assert r.status == 404
    for c in (doctor, patient):
        await c.close()


async def test_the_practitioner_saves_the_board_as_a_png_document(server: Running) -> None:
    demo, doctor, patient = await in_call(server)
    status, body = await post(demo["practitioner_link"], png_bytes(400, 300), "image/png")
    assert status == 200, body
    await patient.recv("whiteboard-changes")
    # a thick red line across the top quarter, over the white part of the background
    await send(patient, {**stroke("red", [0.1, 0.1, 0.9, 0.1]), "width": 0.05})
    await patient.recv("whiteboard-changes")
    await send(doctor, {"type": "whiteboard-save", "id": "save"})
    saved_msg = await doctor.recv("whiteboard-saved")
    document = await server.clinic.get_document(saved_msg["document_id"])
    assert (document.source, document.added_by, document.media_type) == ("whiteboard", "practitioner", "image/png")
    assert document.consultation_id == demo["consultation_id"] and document.name.endswith(".png")
    path = await server.clinic.document_path(document)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image.shape == (300, 400, 3)  # the background page's size
    b, g, r = (int(v) for v in image[30, 200])  # the stroke (BGR)
    assert r > 150 and g < 80 and b < 80, (b, g, r)
    assert image[150, 200].max() < 50  # the background's black square
    assert image[280, 20].min() > 200  # white elsewhere
    assert [d.id for d in await server.clinic.list_documents(consultation_id=demo["consultation_id"])] == [document.id]
    # no temporary file left behind
    assert not list((server.config.data_path / "whiteboard" / demo["consultation_id"]).glob(".save-*"))
    for c in (doctor, patient):
        await c.close()


async def test_points_per_board_bound_and_a_big_board_reaches_a_new_tab(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"whiteboard.max_points": 6000}) as server:
        demo, doctor, patient = await in_call(server)
        await send(doctor, {"type": "whiteboard-open", "open": True})
        # 5 strokes of 1000 points: 10000 coordinates, sent whole to a new tab (serialised off the loop)
        points = [round(0.1 + 0.8 * i / 2000, 5) for i in range(2000)]
        for i in range(5):
            await send(doctor, stroke(f"big{i}", points))
        await wait_saved(server, demo, [f"big{i}" for i in range(5)])
        # a 6th of 1000 points fits exactly; one more point does not
        await send(doctor, stroke("tail", points[:-2] + [0.5, 0.5], end=False))
        await send(doctor, stroke("tail", [0.6, 0.6], id="over"))
        error = await doctor.recv("error")
        assert (error["code"], error["ref_id"]) == ("bad-message", "over") and "6000 points" in error["message"]
        await send(doctor, stroke("tail", [], end=True))
        await wait_saved(server, demo, [*(f"big{i}" for i in range(5)), "tail"])
        await patient.close()
        patient = await Client.open(demo["patient_link"])
        board = await patient.recv("whiteboard")
        assert [len(s["points"]) for s in board["strokes"]] == [2000] * 6
        assert board["strokes"][0]["points"] == points
        for c in (doctor, patient):
            await c.close()


async def test_a_consultation_uploads_a_bounded_number_of_backgrounds(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"whiteboard.max_backgrounds": 2}) as server:
        demo, doctor, patient = await in_call(server)
        for _ in range(2):
            status, body = await post(demo["patient_link"], png_bytes(40, 30))
            assert status == 200, body
        status, body = await post(demo["patient_link"], png_bytes(40, 30))
        assert (status, body["error"]) == (409, "too-many") and "at most 2" in body["message"]
        assert await server.clinic.count_board_backgrounds(demo["consultation_id"]) == 2
        for c in (doctor, patient):
            await c.close()


async def test_a_stroke_in_progress_stays_on_its_page_when_the_page_changes(server: Running, tmp_path: Path) -> None:
    demo, doctor, patient = await in_call(server)
    pdf = write_pdf(tmp_path / "two.pdf", [(0, 0, 10, 10), (0, 0, 20, 20)])
    status, body = await post(demo["practitioner_link"], pdf.read_bytes(), "application/pdf")
    assert status == 200, body
    bg = body["background"]["id"]
    await patient.recv("whiteboard-changes")
    await send(patient, stroke("half", [0.1, 0.1, 0.2, 0.2], end=False))
    await send(doctor, {"type": "whiteboard-page", "page": 1})
    added = await patient.recv("whiteboard-changes")
    assert [(s["id"], s["sheet"]) for s in added["add"]] == [("half", f"{bg}/0")]
    assert (await patient.recv("whiteboard-changes"))["sheet"] == f"{bg}/1"
    # the rest of that stroke was meant for page 0: refused, the kept part stays
    await send(patient, stroke("half", [0.3, 0.3], id="late"))
    error = await patient.recv("error")
    assert (error["code"], error["ref_id"]) == ("bad-message", "late") and "page" in error["message"]
    board = server.hubs.find(demo["consultation_id"]).whiteboard.board
    assert board.strokes["half"].points == (0.1, 0.1, 0.2, 0.2) and board.page == 1
    for c in (doctor, patient):
        await c.close()


async def test_saving_the_board_is_limited_per_minute(server: Running) -> None:
    from signaling.call.whiteboard import SAVES_PER_MINUTE

    demo, doctor, patient = await in_call(server)
    await send(doctor, {"type": "whiteboard-open", "open": True})
    await doctor.recv("whiteboard-changes")
    for n in range(SAVES_PER_MINUTE + 1):
        await send(doctor, {"type": "whiteboard-save", "id": f"save-{n}"})
    saved_ids = [(await doctor.recv("whiteboard-saved"))["document_id"] for _ in range(SAVES_PER_MINUTE)]
    error = await doctor.recv("error")
    assert error["code"] == "rate-limited" and "a minute" in error["message"]
    documents = await server.clinic.list_documents(consultation_id=demo["consultation_id"])
    assert sorted(d.id for d in documents) == sorted(saved_ids) and len(set(saved_ids)) == SAVES_PER_MINUTE
    for c in (doctor, patient):
        await c.close()
