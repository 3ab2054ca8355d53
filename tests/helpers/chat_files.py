"""Chat files over HTTP as a script sends them, and what lands on disk."""

from __future__ import annotations

import io
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def upload(link: str, data: bytes, name: str, **headers: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        url = f"{link}/files?name={urllib.parse.quote(name)}"
        async with session.post(url, data=io.BytesIO(data), headers=headers) as response:
            body = await response.json() if response.content_type == "application/json" else {}
            return response.status, body
