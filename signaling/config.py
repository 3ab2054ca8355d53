"""The operator's configuration: defaults in code, a TOML file decoded strictly.

Every key lives in a dataclass below with its default; `config.toml` at the
repository root shows every key with the same default.  Loading rejects an
unknown key or a value of the wrong type with a message naming the key and
the file, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import math
import os
import re
import tomllib
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, get_args, get_origin, get_type_hints

from clinic.filetypes import DICOM, DOCX, KNOWN_MEDIA_TYPES, ODP, ODS, ODT, PPTX, XLSX
from sealing import Keyring, SealError

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # the address browsers use; invitation links are built on it
    public_url: str = "http://127.0.0.1:8080"
    # a request body must arrive at this average pace (bytes per second) once the grace
    # below has passed, or the connection is closed (slow clients holding descriptors)
    body_min_bytes_per_second: int = 1024
    body_grace_seconds: float = 10.0
    # networks of the reverse proxies whose X-Forwarded-For / Forwarded headers are believed
    trusted_proxies: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StorageConfig:
    # SQLite database, documents and recordings live under this folder
    data_dir: str = "data"
    # key file sealing documents, recordings and whiteboard images at rest (docs/encryption.md);
    # empty: stored in clear, with a warning at start
    key_file: str = ""
    # free space (MiB) under which uploads and recordings are refused and /readyz fails
    min_free_mb: int = 1024
    # each kind of file's folder; empty: a folder of data_dir (docs/operations.md, several nodes)
    documents_dir: str = ""
    whiteboard_dir: str = ""
    recordings_dir: str = ""


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    # empty: the embedded SQLite file in data_dir; else "postgresql://user:password@host:5432/db"
    url: str = ""


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    # empty: one node, nothing shared at run time; else "redis://[:password@]host:6379/0"
    redis_url: str = ""
    # this node's name in the registry; empty: host name and HTTP port
    node_id: str = ""
    # how often a node renews its entry and its consultations, and when they expire without it
    heartbeat_seconds: float = 3.0
    node_ttl_seconds: float = 10.0
    # the site's shared address (the load balancer's, e.g. "https://teleconsult.example"):
    # a browser whose node died or is draining reconnects there; empty: no other way back
    site_url: str = ""


@dataclass(frozen=True, slots=True)
class IceServerConfig:
    urls: list[str] = field(default_factory=list)
    # static credentials, the same for every browser
    username: str = ""
    credential: str = ""
    # TURN REST shared secret (coturn's static-auth-secret): when set, each
    # session gets a time-limited username/credential and the two above stay empty
    secret: str = ""


@dataclass(frozen=True, slots=True)
class AnnounceConfig:
    # an address of host_addresses ...
    bind: str = ""
    # ... and what browsers are told instead (the 1:1 NAT's outside address)
    addresses: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IceConfig:
    # UDP ports the SFU binds for media, inclusive
    port_min: int = 40000
    port_max: int = 40999
    # addresses the SFU binds and announces; empty = every interface address
    host_addresses: list[str] = field(default_factory=list)
    # behind 1:1 NAT: the address(es) to announce for a bound address
    announce: list[AnnounceConfig] = field(default_factory=list)
    # "host:port" of a STUN server asked, at start, for the outside address of each
    # host_addresses entry without an `announce`; "" = no discovery
    discover_with_stun: str = ""
    # seconds a peer connection may take to connect before it is dropped
    connect_timeout: float = 20.0
    # STUN/TURN servers given to browsers; none by default
    servers: list[IceServerConfig] = field(default_factory=list)
    # seconds the credentials made from a server's `secret` stay valid
    turn_credential_ttl: float = 86400.0
    # browsers' iceTransportPolicy: "all", or "relay" to send media only through TURN
    transport_policy: str = "all"


@dataclass(frozen=True, slots=True)
class MediaConfig:
    audio_codecs: list[str] = field(default_factory=lambda: ["opus"])
    video_codecs: list[str] = field(default_factory=lambda: ["VP8"])
    # caps asked of browsers for what they send, in kbit/s
    max_video_kbps: int = 1500
    max_audio_kbps: int = 32
    # minimum seconds between two keyframe requests sent to one publisher
    keyframe_request_interval: float = 0.5
    # the server's event loop: "uvloop" (libuv, about half the CPU per forwarded packet) or "asyncio"
    event_loop: str = "uvloop"
    # how the server learns what each browser's link carries: "transport-cc" (transport-wide feedback
    # both ways; the server estimates each subscriber's downlink itself, sfu/bwe.py) or "remb"
    congestion_control: str = "transport-cc"
    # Opus in RED (each audio packet repeats the previous one) with browsers that offer it
    opus_red: bool = True
    # the most a browser is told to hold the other side's picture while that side's uplink needs repairs
    # (the playout-delay extension, sfu/playout.py), in ms; 0: never told
    max_playout_floor_ms: int = 500
    # SCHED_RR priority (1-99) of the event loop that forwards media (each media worker's, or the
    # server's with [sfu] workers = 1); 0: normal scheduling
    realtime_priority: int = 0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: taskset, a container's cpuset), else all."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class SfuConfig:
    # media worker processes: "auto" (one per core this process may use) or a number; 1 keeps the
    # rooms (and the recorder) in the server's process
    workers: int | str = "auto"

    @property
    def worker_count(self) -> int:
        return usable_cores() if self.workers == "auto" else int(self.workers)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = ""
    port: int = 587
    # "starttls", "tls" or "none"
    security: str = "starttls"
    username: str = ""
    password: str = ""
    # seconds one connection (connect, login, send) may take
    timeout: float = 30.0
    # PEM bundle of the CAs that may sign the relay's certificate; "" = the system's
    ca_file: str = ""


@dataclass(frozen=True, slots=True)
class MailConfig:
    sender: str = "Teleconsult <no-reply@teleconsult.invalid>"
    # folder for .eml files when no SMTP host is set, relative to data_dir
    outbox_dir: str = "outbox"
    # seconds before the first retry of a failed send; doubled at each failure
    retry_base_seconds: float = 30.0
    # longest wait between two attempts
    retry_max_seconds: float = 3600.0
    # attempts before a message is marked failed for good
    max_attempts: int = 20
    # how long before an appointment the patient's reminder goes out: a number and a
    # unit (m, h, d), e.g. "24h"; "0" sends none
    reminder_before: str = "24h"
    smtp: SmtpConfig = field(default_factory=SmtpConfig)

    @property
    def reminder_delay(self) -> datetime.timedelta:
        return parse_delay(self.reminder_before)


@dataclass(frozen=True, slots=True)
class AccountsConfig:
    # hours a practitioner's login session lasts
    session_hours: float = 12.0
    # mark cookies Secure even on plain-HTTP requests (behind a TLS proxy)
    secure_cookies: bool = False
    # failed logins allowed per account from one client address within the window
    login_max_failures: int = 5
    login_window_minutes: float = 15.0
    # failed logins allowed per client address, whatever the account, within the window
    login_address_max_failures: int = 20
    # failed logins on one account, from every address, within the window after which
    # addresses the owner never logged in from are slowed down (never locked)
    login_account_ceiling: int = 10
    # past that ceiling: one attempt per account per this many seconds from such addresses
    login_slowdown_seconds: float = 60.0
    # days an address the owner logged in from stays known (exempt from the slowdown)
    login_known_address_days: float = 90.0


@dataclass(frozen=True, slots=True)
class PatientAccessConfig:
    # days the link in the patient's email stays valid
    lifetime_days: float = 30.0
    # wrong dates of birth before the link is locked
    max_failures: int = 5
    # date-of-birth attempts allowed per link and per address within a minute
    attempts_per_minute: int = 3


@dataclass(frozen=True, slots=True)
class PracticeConfig:
    # IANA time zone of the practice: day lists and scheduling forms use it
    timezone: str = "Europe/Paris"
    # how patients reach the practice (phone, address), shown when they cannot or do not
    # want to join by video; empty: "contact your practitioner as usual"
    contact: str = ""
    # the practice's name as patients know it, in every mail's subject and calendar entry
    name: str = "Teleconsult"


@dataclass(frozen=True, slots=True)
class InvitationConfig:
    # hours an invitation link stays valid after the consultation's time
    lifetime_hours: float = 24.0


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    # largest WebSocket message accepted from a browser, in bytes
    max_message_bytes: int = 262144


@dataclass(frozen=True, slots=True)
class StatsConfig:
    # seconds between two collections of media statistics (and quality pushes)
    interval: float = 2.0


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    # the operator's listener (/metrics, /stats, /mail/status, /healthz, /readyz); never public
    host: str = "127.0.0.1"
    port: int = 9180
    # /readyz fails when a queued mail is overdue by more than this many minutes
    mail_stuck_minutes: float = 15.0


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    # "text" (one readable line per event) or "json" (one JSON object per line)
    format: str = "text"


_DELAY_UNITS: Final = {"m": 60, "h": 3600, "d": 86400}


def parse_delay(text: str) -> datetime.timedelta:
    """A delay such as "24h", "90m" or "2d" ("0" is none); ValueError otherwise."""
    text = text.strip()
    if text == "0":
        return datetime.timedelta(0)
    number, unit = text[:-1], text[-1:]
    if unit not in _DELAY_UNITS or not number.isdigit() or len(number) > 6:
        raise ValueError(f"{text!r} is not a delay such as 24h, 90m or 2d")
    return datetime.timedelta(seconds=int(number) * _DELAY_UNITS[unit])


def _default_document_types() -> list[str]:
    return [
        "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/heic", "image/heif",
        "audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4",
        "video/webm", "video/mp4", "video/ogg", "video/quicktime", "video/x-matroska",
        "application/pdf", DOCX, XLSX, PPTX, ODT, ODS, ODP, DICOM, "text/plain", "application/octet-stream",
    ]


@dataclass(frozen=True, slots=True)
class DocumentsConfig:
    # largest file shared in the chat, in bytes
    max_upload_bytes: int = 104857600
    # days a document of any kind (imported, chat, recording, board image) is kept after it was
    # added; 0 keeps documents until removed by hand or by the record's erasure
    retention_days: int = 0
    # bytes of documents each side may store in one consultation (chat files, closing imports)
    max_bytes_per_side: int = 262144000
    # bytes of documents both sides together may store in one consultation
    max_bytes_per_consultation: int = 524288000
    # media types accepted, as sniffed from the bytes (never the name or the browser's label);
    # "application/octet-stream" is every other file, only ever offered as a download
    allowed_types: list[str] = field(default_factory=_default_document_types)


@dataclass(frozen=True, slots=True)
class ChatConfig:
    # longest chat message, in characters
    max_chars: int = 4000
    # most messages one side may send in a minute
    max_per_minute: int = 60
    # how many of the latest messages a (re)connecting tab receives
    history_limit: int = 500


@dataclass(frozen=True, slots=True)
class WhiteboardConfig:
    # points one stroke may hold (a stroke drawn longer is refused past it)
    max_points_per_stroke: int = 2000
    # strokes shown on one consultation's board, every page together
    max_strokes: int = 1000
    # actions each side can undo
    undo_depth: int = 100
    # points of every stroke shown, together: bounds what a (re)joining tab receives
    max_points: int = 200000
    # largest whiteboard WebSocket message, in bytes (also capped by limits.max_message_bytes)
    max_message_bytes: int = 65536
    # pointer positions a side may send per second; the extra ones are dropped
    pointer_rate: float = 30.0
    # largest background document (image or PDF) uploaded, in bytes
    max_upload_bytes: int = 20971520
    # pages of a PDF background
    max_pdf_pages: int = 100
    # background documents one consultation may upload (each is kept on disk with its pages)
    max_backgrounds: int = 30
    # longest side, in pixels, of a rendered background page and of a board saved as PNG
    page_max_px: int = 1600


@dataclass(frozen=True, slots=True)
class RecordingConfig:
    # roles that may start and stop a recording: "practitioner", "patient"
    allowed_roles: list[str] = field(default_factory=lambda: ["practitioner"])
    # the other side must accept before a recording starts (the answer goes in the consent ledger)
    require_consent: bool = True
    # the composed MP4's picture size (even numbers) and frame rate
    width: int = 1280
    height: int = 480
    fps: int = 15
    # days a recording is kept; 0 keeps recordings until removed by hand
    retention_days: int = 0


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    # days a patient's record must be kept after their last consultation before the operator
    # may erase it (`teleconsult patient erase`); French medical records: 20 years
    record_days: int = 7300


@dataclass(frozen=True, slots=True)
class AuditConfig:
    # seconds between two checkpoints of the audit chain's head, written to the log and
    # to data_dir/audit-checkpoints.jsonl (copy that file elsewhere: it proves the tail)
    checkpoint_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class Config:
    http: HttpConfig = field(default_factory=HttpConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    ice: IceConfig = field(default_factory=IceConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    sfu: SfuConfig = field(default_factory=SfuConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    invitations: InvitationConfig = field(default_factory=InvitationConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    whiteboard: WhiteboardConfig = field(default_factory=WhiteboardConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    patient_access: PatientAccessConfig = field(default_factory=PatientAccessConfig)
    practice: PracticeConfig = field(default_factory=PracticeConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    # folder relative paths in this file are resolved against
    base_dir: str = "."

    @property
    def data_path(self) -> Path:
        return _resolve(self.base_dir, self.storage.data_dir)

    @property
    def key_path(self) -> Path | None:
        return _resolve(self.base_dir, self.storage.key_file) if self.storage.key_file else None

    @property
    def audit_checkpoints_path(self) -> Path:
        return self.data_path / "audit-checkpoints.jsonl"

    @property
    def documents_path(self) -> Path:
        return _resolve(self.base_dir, self.storage.documents_dir or str(self.data_path / "documents"))

    @property
    def whiteboard_path(self) -> Path:
        return _resolve(self.base_dir, self.storage.whiteboard_dir or str(self.data_path / "whiteboard"))

    @property
    def recordings_path(self) -> Path:
        return _resolve(self.base_dir, self.storage.recordings_dir or str(self.data_path / "recordings"))

    @property
    def smtp_ca_path(self) -> Path | None:
        return _resolve(self.base_dir, self.mail.smtp.ca_file) if self.mail.smtp.ca_file else None

    @property
    def outbox_path(self) -> Path:
        return _resolve(str(self.data_path), self.mail.outbox_dir)


def _resolve(base: str, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(base) / p).resolve()


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Load `path` (or the defaults when None) and apply dotted-key overrides.

    Overrides are for tests and the CLI: `load_config(None, **{"http.port": 0})`.
    """
    raw: dict[str, Any] = {}
    where = "defaults"
    base_dir = "."
    if path is not None:
        p = Path(path)
        where = str(p)
        try:
            with p.open("rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{where}: file not found") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from None
        base_dir = str(p.resolve().parent)
        if "base_dir" in raw:
            raise ConfigError(f"{where}: unknown key 'base_dir'")
    for dotted, value in overrides.items():
        _set_dotted(raw, dotted.replace("__", "."), value)
    raw.setdefault("base_dir", base_dir)
    config: Config = _decode(Config, raw, "", where)
    _validate(config, where)
    return config


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value


def _decode(cls: type[Any], raw: Any, prefix: str, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] must be a table")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{prefix}{unknown[0]}' "
            f"(known keys here: {', '.join(sorted(names - {'base_dir'}))})"
        )
    values = {
        name: _coerce(hints[name], value, prefix + name, where)
        for name, value in raw.items()
    }
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str, where: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _decode(typing.cast(type[Any], hint), value, key + ".", where)
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{key}' must be a list, got {_kind(value)}")
        return [_coerce(item, v, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if hint == int | str:  # a number or a word ([sfu] workers = 2 or "auto")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where}: '{key}' must be an integer or a string, got {_kind(value)} {value!r}")
        return value
    ok = {
        str: isinstance(value, str),
        int: isinstance(value, int) and not isinstance(value, bool),
        # nan and inf slip through every `<= 0` check below
        float: isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        bool: isinstance(value, bool),
    }[hint]
    if not ok:
        raise ConfigError(
            f"{where}: '{key}' must be {_TYPE_NAMES[hint]}, got {_kind(value)} {value!r}"
        )
    return float(value) if hint is float else value


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a finite number", bool: "true or false"}


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _validate(c: Config, where: str) -> None:
    def fail(key: str, why: str) -> None:
        raise ConfigError(f"{where}: '{key}' {why}")

    if not 0 <= c.http.port <= 65535:
        fail("http.port", "must be between 0 and 65535")
    if not c.http.public_url.startswith(("http://", "https://")):
        fail("http.public_url", "must start with http:// or https://")
    if c.database.url and not c.database.url.startswith(("postgresql://", "postgres://")):
        fail("database.url", "must be empty (SQLite in data_dir) or start with postgresql://")
    if c.cluster.redis_url and not c.cluster.redis_url.startswith(("redis://", "rediss://", "unix://")):
        fail("cluster.redis_url", "must be empty (one node) or start with redis://, rediss:// or unix://")
    if not 0 < c.cluster.heartbeat_seconds * 2 <= c.cluster.node_ttl_seconds:
        fail("cluster.heartbeat_seconds", "must be positive and at most half of cluster.node_ttl_seconds")
    if c.cluster.site_url and not re.fullmatch(r"https?://[^/?#\s]+/?", c.cluster.site_url):
        fail("cluster.site_url", "must be empty or an http(s) address without a path, e.g. https://teleconsult.example")
    if not 1024 <= c.ice.port_min <= c.ice.port_max <= 65535:
        fail("ice.port_min", "and ice.port_max must satisfy 1024 <= port_min <= port_max <= 65535")
    for i, addr in enumerate(c.ice.host_addresses):
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            fail(f"ice.host_addresses[{i}]", f"is not an IP address: {addr!r}")
    for i, entry in enumerate(c.ice.announce):
        if entry.bind not in c.ice.host_addresses:
            fail(f"ice.announce[{i}].bind", f"must be one of ice.host_addresses, got {entry.bind!r}")
        if not entry.addresses:
            fail(f"ice.announce[{i}].addresses", "must name at least one address")
        for addr in entry.addresses:
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                fail(f"ice.announce[{i}].addresses", f"has {addr!r}, which is not an IP address")
    if c.ice.discover_with_stun:
        if not c.ice.host_addresses:
            fail("ice.discover_with_stun", "needs ice.host_addresses (the addresses whose outside address is asked)")
        host, _, port = c.ice.discover_with_stun.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            fail("ice.discover_with_stun", f"must be \"host:port\", got {c.ice.discover_with_stun!r}")
    for i, server in enumerate(c.ice.servers):
        if not server.urls:
            fail(f"ice.servers[{i}].urls", "must name at least one stun: or turn: URL")
        for url in server.urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                fail(f"ice.servers[{i}].urls", f"has {url!r}, which is not stun:, turn: or turns:")
        if server.secret:
            for key, value in (("username", server.username), ("credential", server.credential)):
                if value:
                    fail(f"ice.servers[{i}].{key}", "must be empty when 'secret' is set (credentials are then made per session)")
    if c.ice.turn_credential_ttl <= 0:
        fail("ice.turn_credential_ttl", "must be positive")
    if c.ice.transport_policy not in ("all", "relay"):
        fail("ice.transport_policy", "must be \"all\" or \"relay\"")
    if c.ice.connect_timeout <= 0:
        fail("ice.connect_timeout", "must be positive")
    known_audio, known_video = {"opus", "pcmu", "pcma", "g722"}, {"vp8", "h264"}
    if not c.media.audio_codecs or any(x.lower() not in known_audio for x in c.media.audio_codecs):
        fail("media.audio_codecs", f"must list codecs among {sorted(known_audio)}")
    if not c.media.video_codecs or any(x.lower() not in known_video for x in c.media.video_codecs):
        fail("media.video_codecs", f"must list codecs among {sorted(known_video)}")
    if c.media.max_video_kbps < 100:
        fail("media.max_video_kbps", "must be >= 100")
    if c.media.max_audio_kbps < 6:
        fail("media.max_audio_kbps", "must be >= 6")
    workers = c.sfu.workers
    if isinstance(workers, str) and workers != "auto":
        fail("sfu.workers", f'must be "auto" or a number of processes, got {workers!r}')
    if isinstance(workers, int) and not 1 <= workers <= 64:
        fail("sfu.workers", "must be between 1 and 64")
    if c.sfu.worker_count > c.ice.port_max - c.ice.port_min + 1:
        fail("sfu.workers", "needs at least one UDP port per worker in ice.port_min..ice.port_max")
    if c.media.event_loop not in ("uvloop", "asyncio"):
        fail("media.event_loop", 'must be "uvloop" or "asyncio"')
    if not 0 <= c.media.max_playout_floor_ms <= 2000:
        fail("media.max_playout_floor_ms", "must be between 0 (off) and 2000")
    if not 0 <= c.media.realtime_priority <= 99:
        fail("media.realtime_priority", "must be between 0 (off) and 99")
    if c.media.congestion_control not in ("transport-cc", "remb"):
        fail("media.congestion_control", 'must be "transport-cc" or "remb"')
    if not 1 <= c.mail.smtp.port <= 65535:
        fail("mail.smtp.port", "must be between 1 and 65535")
    if c.mail.smtp.security not in ("starttls", "tls", "none"):
        fail("mail.smtp.security", "must be \"starttls\", \"tls\" or \"none\"")
    if c.invitations.lifetime_hours <= 0:
        fail("invitations.lifetime_hours", "must be positive")
    if c.limits.max_message_bytes < 1024:
        fail("limits.max_message_bytes", "must be at least 1024")
    if c.stats.interval < 0.5:
        fail("stats.interval", "must be at least 0.5 seconds")
    _validate_recording(c.recording, fail)
    for i, net in enumerate(c.http.trusted_proxies):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            fail(f"http.trusted_proxies[{i}]", f"is not a network in CIDR form: {net!r}")
    if not 0 <= c.operator.port <= 65535:
        fail("operator.port", "must be between 0 and 65535")
    if c.operator.port and c.operator.port == c.http.port:
        fail("operator.port", "must differ from http.port (the operator's listener is never public)")
    if c.operator.mail_stuck_minutes <= 0:
        fail("operator.mail_stuck_minutes", "must be positive")
    if c.storage.min_free_mb < 0:
        fail("storage.min_free_mb", "must be 0 (no check) or a number of MiB")
    if c.logging.format not in ("text", "json"):
        fail("logging.format", "must be \"text\" or \"json\"")
    if c.documents.max_upload_bytes < 1:
        fail("documents.max_upload_bytes", "must be at least 1")
    if c.documents.max_bytes_per_side < 1:
        fail("documents.max_bytes_per_side", "must be at least 1")
    if c.documents.max_bytes_per_consultation < 1:
        fail("documents.max_bytes_per_consultation", "must be at least 1")
    for i, media_type in enumerate(c.documents.allowed_types):
        if media_type not in KNOWN_MEDIA_TYPES:
            fail(f"documents.allowed_types[{i}]", f"is {media_type!r}, not one of {', '.join(KNOWN_MEDIA_TYPES)}")
    if not 1 <= c.chat.max_chars <= 100000:
        fail("chat.max_chars", "must be between 1 and 100000")
    if c.chat.max_per_minute < 1:
        fail("chat.max_per_minute", "must be at least 1")
    if c.chat.history_limit < 1:
        fail("chat.history_limit", "must be at least 1")
    wb = c.whiteboard
    bounds: tuple[tuple[str, int, int, int], ...] = (
        ("max_points_per_stroke", wb.max_points_per_stroke, 2, 100000),
        ("max_strokes", wb.max_strokes, 1, 100000),
        ("undo_depth", wb.undo_depth, 1, 10000),
        ("max_points", wb.max_points, 2, 10000000),
        ("max_message_bytes", wb.max_message_bytes, 1024, 16777216),
        ("max_upload_bytes", wb.max_upload_bytes, 1024, 1073741824),
        ("max_pdf_pages", wb.max_pdf_pages, 1, 10000),
        ("max_backgrounds", wb.max_backgrounds, 1, 10000),
        ("page_max_px", wb.page_max_px, 64, 8192),
    )
    for name, number, low, high in bounds:
        if not low <= number <= high:
            fail(f"whiteboard.{name}", f"must be between {low} and {high}")
    if not 1.0 <= wb.pointer_rate <= 120.0:
        fail("whiteboard.pointer_rate", "must be between 1 and 120 per second")
    if c.mail.smtp.timeout <= 0:
        fail("mail.smtp.timeout", "must be positive")
    if c.mail.retry_base_seconds <= 0:
        fail("mail.retry_base_seconds", "must be positive")
    if c.mail.retry_max_seconds < c.mail.retry_base_seconds:
        fail("mail.retry_max_seconds", "must be at least mail.retry_base_seconds")
    if c.mail.max_attempts < 1:
        fail("mail.max_attempts", "must be at least 1")
    if c.accounts.session_hours <= 0:
        fail("accounts.session_hours", "must be positive")
    if c.accounts.login_max_failures < 1:
        fail("accounts.login_max_failures", "must be at least 1")
    if c.accounts.login_window_minutes <= 0:
        fail("accounts.login_window_minutes", "must be positive")
    if c.http.body_min_bytes_per_second < 1:
        fail("http.body_min_bytes_per_second", "must be at least 1")
    if not 0 < c.http.body_grace_seconds <= 3600:
        fail("http.body_grace_seconds", "must be between 0 and 3600")
    if c.accounts.login_address_max_failures < 1:
        fail("accounts.login_address_max_failures", "must be at least 1")
    if c.accounts.login_account_ceiling < 1:
        fail("accounts.login_account_ceiling", "must be at least 1")
    if c.accounts.login_known_address_days <= 0:
        fail("accounts.login_known_address_days", "must be positive")
    # OWASP ASVS 2.2.1: no more than 100 failed attempts per hour on one account
    if not c.accounts.login_slowdown_seconds > 0 or \
            c.accounts.login_account_ceiling + 3600 / c.accounts.login_slowdown_seconds > 100:
        fail("accounts.login_slowdown_seconds",
             "must keep login_account_ceiling + 3600 / login_slowdown_seconds at most 100 (tries per hour)")
    if c.patient_access.lifetime_days <= 0:
        fail("patient_access.lifetime_days", "must be positive")
    if c.patient_access.max_failures < 1:
        fail("patient_access.max_failures", "must be at least 1")
    if c.patient_access.attempts_per_minute < 1:
        fail("patient_access.attempts_per_minute", "must be at least 1")
    if c.documents.retention_days < 0:
        fail("documents.retention_days", "must be 0 (keep) or a number of days")
    if not 0 <= c.retention.record_days <= 36500:
        fail("retention.record_days", "must be between 0 and 36500 days")
    if c.key_path is not None:
        try:
            Keyring(c.key_path)
        except SealError as exc:
            fail("storage.key_file", f"is not usable: {exc}")
    if not 1.0 <= c.audit.checkpoint_seconds <= 86400.0:
        fail("audit.checkpoint_seconds", "must be between 1 and 86400")
    try:
        reminder = parse_delay(c.mail.reminder_before)
    except ValueError as exc:
        fail("mail.reminder_before", f"is not valid: {exc}")
    else:
        if reminder > datetime.timedelta(days=60):
            fail("mail.reminder_before", "must be at most 60 days")
    if not 1 <= len(c.practice.name.strip()) <= 100 or any(ch in c.practice.name for ch in "\r\n"):
        fail("practice.name", "must have 1 to 100 characters on one line")
    if len(c.practice.contact) > 300:
        fail("practice.contact", "must be at most 300 characters")
    try:
        zoneinfo.ZoneInfo(c.practice.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        fail("practice.timezone", f"is not a known IANA time zone: {c.practice.timezone!r}")


def _validate_recording(r: RecordingConfig, fail: typing.Callable[[str, str], None]) -> None:
    for i, role in enumerate(r.allowed_roles):
        if role not in ("practitioner", "patient"):
            fail(f"recording.allowed_roles[{i}]", f"must be \"practitioner\" or \"patient\", got {role!r}")
    for key, value, low, high in (("width", r.width, 160, 3840), ("height", r.height, 120, 2160)):
        if not low <= value <= high or value % 2:
            fail(f"recording.{key}", f"must be an even number between {low} and {high}")
    if not 1 <= r.fps <= 60:
        fail("recording.fps", "must be between 1 and 60")
    if r.retention_days < 0:
        fail("recording.retention_days", "must be 0 (keep) or a number of days")
