"""Reading a Server-Sent Events stream (the day list's GET /day/events) as a browser's EventSource would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


async def next_event(response: aiohttp.ClientResponse, kind: str, timeout: float = 10.0) -> Any:
    """The data of the next event of this kind (others skipped); TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        event, data = "message", ""
        while True:
            line = (await response.content.readline()).decode()
            if not line:
                raise EOFError(f"the stream ended before a {kind!r} event")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif line == "":
                if event == kind and data:
                    return json.loads(data)
                event, data = "message", ""
