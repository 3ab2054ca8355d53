"""A recording sealed on disk plays in Chromium with seeking (issue 19 item 3)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from clinic.notices import TELECONSULTATION
from recorder.manifest import read_manifest, write_manifest
from sealing import Keyring, generate_key, is_sealed
from helpers.server import running_server
from helpers.synthetic import sealed_recording
from helpers.ws_client import wait_composed

# play, then seek near the end and back: where it landed, and whether a picture shows
SEEK = """async (url) => {
  const v = document.createElement('video');
  v.muted = true;
  document.body.append(v);
  v.src = url;
  await new Promise((ok, ko) => { v.onloadedmetadata = ok; v.onerror = () => ko(new Error(String(v.error?.code))); });
  await v.play();
  const seek = (t) => new Promise((ok, ko) => {
    v.onseeked = ok; v.onerror = () => ko(new Error(String(v.error?.code))); v.currentTime = t; });
  const out = {duration: v.duration, width: v.videoWidth, at: []};
  for (const t of [v.duration - 0.5, 0.5]) { await seek(t); out.at.push(v.currentTime); }
  v.remove();
  return out;
}"""


async def test_a_sealed_recording_plays_and_seeks_in_the_browser(tmp_path: Path, open_page: Any) -> None:
    key_file = tmp_path / "keys"
    generate_key(key_file)
    data = tmp_path / "data"
    settings = {"storage.key_file": str(key_file), "recording.width": 320, "recording.height": 120}
    async with running_server(data, **settings) as server:
        demo = await server.demo()
    folder = data / "recordings" / demo["consultation_id"] / "r"
    manifest = sealed_recording(folder, 6.0, Keyring(key_file))
    manifest.state, manifest.consultation_id = "stopped", demo["consultation_id"]
    write_manifest(folder, manifest)
    async with running_server(data, **settings) as server:
        await wait_composed(server, timeout=90.0)
        document_id = read_manifest(folder).document_id
        assert document_id is not None
        document = await server.clinic.get_document(document_id)
        assert is_sealed(await server.clinic.document_path(document))
        await server.clinic.record_consent(demo["consultation_id"], "patient", "teleconsultation", "given",
                                           TELECONSULTATION.version)
        link = server.base_url + urllib.parse.urlsplit(demo["patient_link"]).path  # the new server's port
        page = await open_page("blue")
        statuses: list[int] = []
        page.on("response", lambda r: statuses.append(r.status) if document_id in r.url else None)
        await page.goto(link)
        got = await page.evaluate(SEEK, f"{link}/files/{document_id}")
        assert 206 in statuses, statuses  # the player read ranges, each decrypted from its chunks
        assert 5.5 < got["duration"] < 6.5 and got["width"] == 320, got
        near_end, start = got["at"]
        assert abs(near_end - (got["duration"] - 0.5)) < 0.2 and abs(start - 0.5) < 0.2, got
