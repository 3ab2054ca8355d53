"""One participant's WebSocket: validation, dispatch, error replies."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from clinic import NetTest, Role
from sfu import ConnectionProbe, SfuError

from ..config import Config
from ..errors import ProtocolError
from ..failures import log_failure
from .consent import notice_json
from .hub import Hub
from .protocol import PROTOCOL_VERSION, error_message, parse_client_message
from .turn import ice_servers_for
from .whiteboard import MESSAGE_TYPES as WHITEBOARD_MESSAGES

logger = logging.getLogger(__name__)

CLOSE_REPLACED = 4001
CLOSE_GOING_AWAY = 1001
# seconds a connection test's peer connection may live (the browser's test takes ~7 s)
PROBE_TIMEOUT = 15.0


class Session:
    """A participant's WebSocket; implements `hub.Connection`."""

    def __init__(self, ws: web.WebSocketResponse, role: Role, hub: Hub, config: Config,
                 *, probe_drop_rate: float = 0.0) -> None:
        self.id = uuid.uuid4().hex[:8]
        self.role = role
        self._ws = ws
        self._hub = hub
        self._config = config
        self._probe_drop_rate = probe_drop_rate
        # the connection test's peer connection: at most one per session
        self._probe: ConnectionProbe | None = None

    def __repr__(self) -> str:
        return f"Session({self.id}, {self.role.value}, {self._hub.id})"

    async def send(self, message: dict[str, Any]) -> None:
        if not self._ws.closed:
            try:
                await self._ws.send_json(message)
            except ConnectionError:
                pass  # the socket went away; the read loop ends the session

    async def send_text(self, text: str) -> None:
        """Send a message already turned into JSON (big ones are, off the event loop)."""
        if not self._ws.closed:
            try:
                await self._ws.send_str(text)
            except ConnectionError:
                pass

    async def replaced(self) -> None:
        await self.send({"type": "replaced", "reason": "opened-elsewhere"})
        await self._ws.close(code=CLOSE_REPLACED, message=b"opened elsewhere")

    async def going_away(self) -> None:
        if self._config.cluster.site_url:  # another node takes the call over: go there now
            await self.send({"type": "reconnect", "reason": "node-stopping"})
        await self._ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down")

    def welcome(self) -> dict[str, Any]:
        ice = ice_servers_for(self._config.ice, self.id, time.time())
        return {
            "type": "welcome",
            "protocol": PROTOCOL_VERSION,
            "role": self.role.value,
            "consultation_id": self._hub.id,
            # the waiting room's estimated wait line
            "scheduled_at": self._hub.scheduled_at.isoformat(),
            "ice_servers": ice,
            "ice_transport_policy": self._config.ice.transport_policy,
            "max_video_kbps": self._config.media.max_video_kbps,
            "max_audio_kbps": self._config.media.max_audio_kbps,
            "recording": {"allowed": self.role.value in self._config.recording.allowed_roles,
                          "consent": self._config.recording.require_consent},
            # the notices the patient consents to, and how to reach the practice otherwise
            "notices": notice_json(),
            "practice_contact": self._config.practice.contact,
            # where to reconnect when this node is gone (the site's shared address), or null
            "site_url": self._config.cluster.site_url.rstrip("/") or None,
        }

    async def run(self) -> None:
        """Serve the socket until it closes."""
        await self.send(self.welcome())
        await self._hub.attach(self)
        try:
            await self._hub.chat.send_history(self)
            async for msg in self._ws:
                if msg.type == WSMsgType.TEXT:
                    await self._handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self.send(error_message(ProtocolError("bad-json", "binary frames are not accepted")))
                elif msg.type == WSMsgType.ERROR:
                    # e.g. a frame over the size limit; aiohttp closes the socket after this
                    logger.info("%r socket error: %s", self, self._ws.exception())
        finally:
            self._close_probe()
            await self._hub.detach(self)

    async def _answer_probe(self, sdp: str) -> str:
        """A connection test: a new short-lived peer connection replaces any previous one."""
        self._close_probe()
        probe = ConnectionProbe(f"{self.id}-{uuid.uuid4().hex[:4]}", timeout=PROBE_TIMEOUT,
                                drop_rate=self._probe_drop_rate)
        self._probe = probe
        try:
            return await probe.answer(sdp)
        except SfuError as exc:
            probe.close()
            raise ProtocolError("media-error", str(exc)) from None

    def _close_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.close()

    async def _handle(self, text: str) -> None:
        ref_type: str | None = None
        ref_id: str | None = None
        try:
            msg = parse_client_message(text, self._config.limits.max_message_bytes)
            ref_type, ref_id = msg.type, msg.id
            if msg.type == "offer":
                answer = await self._hub.offer(self, msg.fields["sdp"])
                await self.send({"type": "answer", "sdp": answer})
            elif msg.type == "tracks":
                await self._hub.set_tracks(self, msg.fields)
            elif msg.type == "probe-offer":
                await self.send({"type": "probe-answer", "sdp": await self._answer_probe(msg.fields["sdp"])})
            elif msg.type == "chat":
                await self._hub.chat.post_text(self, msg.fields["text"])
            elif msg.type == "readiness":
                await self._hub.set_readiness(self, msg.fields["mic"], msg.fields["camera"], _net_test(msg.fields["test"]))
            elif msg.type in WHITEBOARD_MESSAGES:
                await self._hub.whiteboard.handle(self, msg, len(text))
            elif msg.type == "consent":
                await self._hub.consent_message(self, msg.fields["decision"], msg.fields["version"])
            elif msg.type in ("record", "recording-consent", "recording-seen"):
                await self._hub.recording_message(self, msg.type, msg.fields)
            else:
                await self._hub.act(self.role, msg.type)
        except ProtocolError as exc:
            logger.info("%r refused a message: %s", self, exc.code)
            await self.send(error_message(exc, ref_type or exc.ref_type, ref_id or exc.ref_id))
        except Exception as exc:
            # a bug of ours must not end the session: one line with a code, tell the client, go on
            code = log_failure(logger, exc, "%r handling %s", self, ref_type)
            await self.send(error_message(ProtocolError("internal", f"the server failed to handle this message ({code})"),
                                          ref_type, ref_id))


def _net_test(raw: dict[str, Any] | None) -> NetTest | None:
    """The `test` object of a `readiness` message (fields already type-checked)."""
    if raw is None:
        return None
    try:
        return NetTest(**raw)
    except ValueError as exc:
        raise ProtocolError("bad-message", f"'readiness.test': {exc}") from None
