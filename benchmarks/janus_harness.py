"""Janus 1.1.2 (Debian package) videoroom for the SFU comparison: config, process, REST client.

Janus never gathers ICE candidates on a loopback interface, so it must run in a network
namespace whose veth carries 127.0.0.2 (`sfu_compare.py` makes it), with
``nat.ice_enforce_list = "127.0.0.2"``; the generator's peers use 127.0.0.2 too
(see /work/shared/notes/sfu-benchmarks.md).  The HTTP API listens on 127.0.0.1:8088
inside that namespace.  Every function here is bounded by timeouts.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp

JANUS = shutil.which("janus") or "/usr/bin/janus"
API = "http://127.0.0.1:8088/janus"
KEEP_PLUGINS = {"libjanus_videoroom.so"}
ALL_PLUGINS = ["audiobridge", "duktape", "echotest", "lua", "nosip", "recordplay", "sip", "streaming",
               "textroom", "videocall", "videoroom", "voicemail"]
DISABLED_TRANSPORTS = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_rabbitmq.so,libjanus_pfunix.so,libjanus_websockets.so"


def _sub(text: str, pattern: str, repl: str) -> str:
    new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    if n != 1:
        raise RuntimeError(f"janus config: pattern not found: {pattern}")
    return new


def prepare_config(workdir: Path, ice_ip: str = "127.0.0.2", ports: str = "20000-20999") -> Path:
    """Copy /etc/janus to `workdir/janus-conf` and edit the copy; returns janus.jcfg."""
    conf = workdir / "janus-conf"
    if conf.exists():
        shutil.rmtree(conf)
    shutil.copytree("/etc/janus", conf)
    main = conf / "janus.jcfg"
    text = main.read_text()
    text = _sub(text, r'^\s*configs_folder = .*$', f'\tconfigs_folder = "{conf}"')
    text = _sub(text, r'^\s*#rtp_port_range = .*$', f'\trtp_port_range = "{ports}"')
    text = _sub(text, r'^\s*#ice_enforce_list = "eth0"\s*$', f'\tice_enforce_list = "{ice_ip}"')
    disabled = ",".join(f"libjanus_{p}.so" for p in ALL_PLUGINS if f"libjanus_{p}.so" not in KEEP_PLUGINS)
    text = _sub(text, r'^\s*#disable = "libjanus_voicemail.so,libjanus_recordplay.so"\s*$', f'\tdisable = "{disabled}"')
    text = _sub(text, r'^\s*#disable = "libjanus_rabbitmq.so"\s*$', f'\tdisable = "{DISABLED_TRANSPORTS}"')
    main.write_text(text)
    http = conf / "janus.transport.http.jcfg"
    http.write_text(_sub(http.read_text(), r'^\s*#ip = "192.168.0.1".*$', '\tip = "127.0.0.1"'))
    return main


def start(config: Path, log: Path, core: int = 0, prefix: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start Janus pinned to `core` (nice and taskset exec janus: the PID is Janus's)."""
    cmd = [*(prefix or []), "taskset", "-c", str(core), JANUS, "-C", str(config), "-F", str(config.parent),
           "-o", "-N", "-d", "3", "-L", str(log)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body = json.dumps({"janus": "info", "transaction": "info"}).encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"janus exited with code {proc.returncode}")
        try:
            req = urllib.request.Request(API, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=1) as r:
                info: dict[str, Any] = json.loads(r.read())
                if info.get("janus") == "server_info":
                    return info
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"janus did not answer on {API} in {timeout} s")


class JanusError(RuntimeError):
    pass


class JanusSession:
    """One Janus session over the HTTP API, with a long-poll task dispatching events."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.id: int | None = None
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poll: asyncio.Task[None] | None = None
        self.events_seen = 0

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(API + path, json=body, timeout=aiohttp.ClientTimeout(total=15)) as r:
            data: dict[str, Any] = await r.json(content_type=None)
        if data.get("janus") == "error":
            raise JanusError(str(data.get("error")))
        return data

    async def create(self) -> None:
        data = await self._post("", {"janus": "create", "transaction": _tx()})
        self.id = data["data"]["id"]
        self._poll = asyncio.ensure_future(self._long_poll())

    async def attach(self, plugin: str = "janus.plugin.videoroom") -> int:
        data = await self._post(f"/{self.id}", {"janus": "attach", "plugin": plugin, "transaction": _tx()})
        return int(data["data"]["id"])

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create room...): the plugin's data."""
        data = await self._post(f"/{self.id}/{handle}", {"janus": "message", "body": body, "transaction": _tx()})
        pdata: dict[str, Any] = data.get("plugindata", {}).get("data", {})
        if "error" in pdata:
            raise JanusError(f"{body.get('request')}: {pdata['error']}")
        return pdata

    async def message(self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None,
                      timeout: float = 20.0) -> dict[str, Any]:
        """An asynchronous plugin request: waits for its event (plugin data + jsep)."""
        tx = _tx()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[tx] = fut
        msg: dict[str, Any] = {"janus": "message", "body": body, "transaction": tx}
        if jsep is not None:
            msg["jsep"] = jsep
        try:
            await self._post(f"/{self.id}/{handle}", msg)
            event = await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.pop(tx, None)
        pdata = event.get("plugindata", {}).get("data", {})
        if "error" in pdata:
            raise JanusError(f"{body.get('request')}: {pdata['error']}")
        return event

    async def trickle_done(self, handle: int) -> None:
        await self._post(f"/{self.id}/{handle}", {"janus": "trickle", "candidate": {"completed": True},
                                                  "transaction": _tx()})

    async def _long_poll(self) -> None:
        while True:
            try:
                async with self.http.get(f"{API}/{self.id}?maxev=20", timeout=aiohttp.ClientTimeout(total=40)) as r:
                    data = await r.json(content_type=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)
                continue
            for event in data if isinstance(data, list) else [data]:
                self.events_seen += 1
                tx = event.get("transaction")
                if event.get("janus") == "event" and tx in self._waiters and not self._waiters[tx].done():
                    self._waiters[tx].set_result(event)

    async def destroy(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            await asyncio.gather(self._poll, return_exceptions=True)
        if self.id is not None:
            try:
                await self._post(f"/{self.id}", {"janus": "destroy", "transaction": _tx()})
            except Exception:
                pass


def _tx() -> str:
    return uuid.uuid4().hex[:12]


def room_create_body(room: int) -> dict[str, Any]:
    return {"request": "create", "room": room, "publishers": 2, "audiocodec": "opus", "videocodec": "vp8",
            "bitrate": 0, "fir_freq": 0, "notify_joining": False, "description": f"bench {room}"}
