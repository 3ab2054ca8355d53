"""The configuration loader against real files (no mocks): config.toml, strict decoding, CLI."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from signaling.config import Config, IceServerConfig, load_config
from signaling.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIG_TOML = ROOT / "config.toml"


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path | None, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, **overrides)
    return str(info.value)


def dotted_keys(cls: type[Any], prefix: str = "") -> set[str]:
    """Every file key of a config dataclass, dotted; list-of-table fields count as one key."""
    keys: set[str] = set()
    for f in dataclasses.fields(cls):
        if f.name == "base_dir":
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            keys |= dotted_keys(type(default), f"{prefix}{f.name}.")
        else:
            keys.add(prefix + f.name)
    return keys


def flatten(raw: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in raw.items():
        if isinstance(value, dict):
            keys |= flatten(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


# --- (a) the shipped config.toml is the defaults, key for key ------------------------

def test_config_toml_is_exactly_the_defaults() -> None:
    loaded = load_config(CONFIG_TOML)
    assert loaded.base_dir == str(ROOT)
    assert dataclasses.replace(loaded, base_dir=".") == Config()


def test_config_toml_shows_every_key() -> None:
    raw = tomllib.loads(CONFIG_TOML.read_text(encoding="utf-8"))
    assert flatten(raw) == dotted_keys(Config)
    assert raw["ice"]["servers"] == []


def test_config_toml_every_key_is_commented() -> None:
    lines = CONFIG_TOML.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line or line.startswith(("#", "[")):
            continue
        above = lines[i - 1]
        # a key follows its comment, or shares it with the key just above (port_min, port_max)
        assert above.startswith("#") or (above and not above.startswith("[")), line


@pytest.mark.parametrize("variant", ["secret", "static"])
def test_config_toml_commented_turn_example_loads(tmp_path: Path, variant: str) -> None:
    text = CONFIG_TOML.read_text(encoding="utf-8")
    example = text[text.index("# [[ice.servers]]"):text.index("\n[media]")]
    lines = [line.removeprefix("# ") for line in example.splitlines()]
    if variant == "static":  # the alternative: fixed credentials instead of the secret
        lines = [line.removeprefix("# ") if line.startswith(("# username", "# credential")) else line
                 for line in lines if not line.startswith("secret")]
    uncommented = "\n".join(lines)
    text = text.replace("servers = []\n", "").replace(example, "").replace("\n[media]", uncommented + "\n[media]")
    config = load_config(write(tmp_path, text))
    assert len(config.ice.servers) == 1
    server = config.ice.servers[0]
    assert server.urls
    if variant == "secret":
        assert server.secret and not server.username and not server.credential
    else:
        assert server.username and server.credential and not server.secret
    assert dataclasses.replace(config, base_dir=".", ice=Config().ice) == Config()


# --- (b) a good custom file -----------------------------------------------------------

GOOD = """
[http]
port = 9000
public_url = "https://visio.example.org"

[storage]
data_dir = "var/data"

[ice]
host_addresses = ["192.0.2.10", "2001:db8::1"]
connect_timeout = 30

[[ice.servers]]
urls = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
username = "tc"
credential = "secret"

[[ice.servers]]
urls = ["turn:turn2.example.org:3478"]
secret = "shared with coturn"

[mail.smtp]
host = "smtp.example.org"
security = "tls"
port = 465
"""


@pytest.mark.parametrize(("attribute", "expected"), [
    ("http.port", 9000),
    ("http.host", "127.0.0.1"),
    ("http.public_url", "https://visio.example.org"),
    ("storage.data_dir", "var/data"),
    ("ice.host_addresses", ["192.0.2.10", "2001:db8::1"]),
    ("ice.connect_timeout", 30.0),
    ("ice.port_min", 40000),
    ("ice.servers", [IceServerConfig(
        urls=["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
        username="tc", credential="secret"),
        IceServerConfig(urls=["turn:turn2.example.org:3478"], secret="shared with coturn")]),
    ("ice.turn_credential_ttl", 86400.0),
    ("ice.transport_policy", "all"),
    ("mail.smtp.host", "smtp.example.org"),
    ("mail.smtp.security", "tls"),
    ("mail.smtp.port", 465),
    ("mail.sender", "Teleconsult <no-reply@teleconsult.invalid>"),
])
def test_good_file_loads_its_values(tmp_path: Path, attribute: str, expected: Any) -> None:
    node: Any = load_config(write(tmp_path, GOOD))
    for name in attribute.split("."):
        node = getattr(node, name)
    assert node == expected
    if isinstance(expected, float):
        assert isinstance(node, float)


def test_relative_paths_resolve_against_the_file_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "teleconsult"
    folder.mkdir(parents=True)
    config = load_config(write(folder, GOOD))
    assert config.base_dir == str(folder.resolve())
    assert config.data_path == (folder / "var" / "data").resolve()
    assert config.outbox_path == (folder / "var" / "data" / "outbox").resolve()


def test_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    outbox = tmp_path / "mails"
    config = load_config(write(tmp_path, f'[storage]\ndata_dir = "{data}"\n[mail]\noutbox_dir = "{outbox}"\n'))
    assert config.data_path == data
    assert config.outbox_path == outbox


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert dataclasses.replace(config, base_dir=".") == Config()


# --- (c) unknown keys -----------------------------------------------------------------

UNKNOWN_KEYS = [
    ("debug = true\n", "debug"),
    ('base_dir = "/"\n', "base_dir"),
    ("[htpp]\nport = 80\n", "htpp"),
    ("[http]\nprot = 80\n", "http.prot"),
    ("[ice]\nport_range = [1, 2]\n", "ice.port_range"),
    ('[mail.smtp]\nhost = "x"\npasword = "y"\n', "mail.smtp.pasword"),
    ('[[ice.servers]]\nurls = ["turn:x"]\nsecrets = "y"\n', "ice.servers[0].secrets"),
    ("[ice]\nturn_ttl = 60\n", "ice.turn_ttl"),
    ('[[ice.servers]]\nurls = ["turn:x"]\npassword = "y"\n', "ice.servers[0].password"),]


@pytest.mark.parametrize(("text", "key"), UNKNOWN_KEYS, ids=[key for _, key in UNKNOWN_KEYS])
def test_unknown_key_is_an_error_naming_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    message = load_error(path)
    assert f"unknown key '{key}'" in message
    assert str(path) in message


# --- (d) wrong types ------------------------------------------------------------------

WRONG_TYPES = [
    ('[http]\nport = "80"\n', "http.port"),
    ("[http]\nport = 80.0\n", "http.port"),
    ('[ice]\nhost_addresses = "127.0.0.1"\n', "ice.host_addresses"),
    ("[ice]\nhost_addresses = [127]\n", "ice.host_addresses[0]"),
    ("[media]\nmax_video_kbps = 1.5\n", "media.max_video_kbps"),
    ("[limits]\nmax_message_bytes = true\n", "limits.max_message_bytes"),
    ("[ice]\nconnect_timeout = false\n", "ice.connect_timeout"),
    ("[ice]\nconnect_timeout = nan\n", "ice.connect_timeout"),
    ("[invitations]\nlifetime_hours = inf\n", "invitations.lifetime_hours"),
    ("[http]\nhost = { name = \"localhost\" }\n", "http.host"),
    ("[mail]\n[mail.smtp.password]\nvalue = \"x\"\n", "mail.smtp.password"),
    ("[media]\naudio_codecs = \"opus\"\n", "media.audio_codecs"),
    ("[mail]\nsender = 1979-05-27\n", "mail.sender"),
    ('http = "0.0.0.0"\n', "http"),
    ("[ice]\nservers = [\"turn:x\"]\n", "ice.servers[0]"),
    ('[[ice.servers]]\nurls = ["turn:x"]\nsecret = 42\n', "ice.servers[0].secret"),
    ('[ice]\nturn_credential_ttl = "1d"\n', "ice.turn_credential_ttl"),
    ("[ice]\nturn_credential_ttl = inf\n", "ice.turn_credential_ttl"),
    ("[ice]\ntransport_policy = true\n", "ice.transport_policy"),
    ('[media]\nopus_red = "no"\n', "media.opus_red"),
    ('[media]\nmax_playout_floor_ms = 0.5\n', "media.max_playout_floor_ms"),
    ('[media]\nrealtime_priority = "high"\n', "media.realtime_priority"),]


@pytest.mark.parametrize(("text", "key"), WRONG_TYPES, ids=[key for _, key in WRONG_TYPES])
def test_wrong_type_is_an_error_naming_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert key in message.removeprefix(f"{path}: ")


# --- (e) validation -------------------------------------------------------------------

INVALID_VALUES = [
    ("[http]\nport = 70000\n", "http.port"),
    ('[http]\npublic_url = "visio.example.org"\n', "http.public_url"),
    ("[ice]\nport_min = 41000\nport_max = 40000\n", "ice.port_min"),
    ("[ice]\nport_min = 80\n", "ice.port_min"),
    ('[ice]\nhost_addresses = ["127.0.0.1", "example.org"]\n', "ice.host_addresses[1]"),
    ('[[ice.servers]]\nurls = ["http://x"]\n', "ice.servers[0].urls"),
    ("[[ice.servers]]\nurls = []\n", "ice.servers[0].urls"),
    ("[ice]\nconnect_timeout = 0\n", "ice.connect_timeout"),
    ('[[ice.servers]]\nurls = ["turn:x"]\nsecret = "s"\nusername = "u"\n', "ice.servers[0].username"),
    ('[[ice.servers]]\nurls = ["turn:x"]\nsecret = "s"\ncredential = "c"\n', "ice.servers[0].credential"),
    ('[[ice.servers]]\nurls = ["stun:x"]\n[[ice.servers]]\nurls = ["turn:y"]\nsecret = "s"\nusername = "u"\ncredential = "c"\n',
     "ice.servers[1].username"),
    ("[ice]\nturn_credential_ttl = 0\n", "ice.turn_credential_ttl"),
    ("[ice]\nturn_credential_ttl = -60\n", "ice.turn_credential_ttl"),
    ('[ice]\ntransport_policy = "none"\n', "ice.transport_policy"),
    ('[ice]\ntransport_policy = "Relay"\n', "ice.transport_policy"),
    ('[media]\naudio_codecs = ["mp3"]\n', "media.audio_codecs"),
    ("[media]\naudio_codecs = []\n", "media.audio_codecs"),
    ('[media]\nvideo_codecs = ["VP8", "AV1"]\n', "media.video_codecs"),
    ("[media]\nmax_video_kbps = 50\n", "media.max_video_kbps"),
    ("[media]\nmax_audio_kbps = 1\n", "media.max_audio_kbps"),
    ("[media]\nmax_playout_floor_ms = 2500\n", "media.max_playout_floor_ms"),
    ("[media]\nmax_playout_floor_ms = -1\n", "media.max_playout_floor_ms"),
    ("[media]\nrealtime_priority = 100\n", "media.realtime_priority"),
    ("[media]\nrealtime_priority = -1\n", "media.realtime_priority"),
    ("[media]\nevent_loop = \"trio\"\n", "media.event_loop"),
    ('[mail.smtp]\nsecurity = "ssl"\n', "mail.smtp.security"),
    ("[mail.smtp]\nport = 0\n", "mail.smtp.port"),
    ("[invitations]\nlifetime_hours = -1\n", "invitations.lifetime_hours"),
    ("[limits]\nmax_message_bytes = 100\n", "limits.max_message_bytes"),
    ('[recording]\nallowed_roles = ["doctor"]\n', "recording.allowed_roles[0]"),
    ("[recording]\nwidth = 641\n", "recording.width"),
    ("[recording]\nheight = 0\n", "recording.height"),
    ("[recording]\nfps = 0\n", "recording.fps"),
    ("[recording]\nretention_days = -1\n", "recording.retention_days"),]


@pytest.mark.parametrize(("text", "key"), INVALID_VALUES, ids=[key for _, key in INVALID_VALUES])
def test_invalid_value_is_an_error_naming_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: '{key}' ")
    assert str(path) in message


# --- (f) unreadable files -------------------------------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    pytest.param(b"[http\nport = 80\n", "not valid TOML", id="unclosed-table"),
    pytest.param(b"[http]\nport = 80\nport = 81\n", "not valid TOML", id="duplicate-key"),
    pytest.param(b"[http]\nport = \n", "not valid TOML", id="missing-value"),
    pytest.param("# café (latin-1)\n[http]\nport = 80\n".encode("latin-1"), "not valid TOML", id="not-utf8"),
    pytest.param(None, "file not found", id="missing"),
    pytest.param("directory", "cannot read", id="directory"),
])
def test_unreadable_file_is_an_error_naming_the_file(tmp_path: Path, content: bytes | str | None, expected: str) -> None:
    path = tmp_path / "config.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "directory":
        path.mkdir()
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


# --- (g) overrides --------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "attribute", "expected"), [
    ({"http.port": 0}, "http.port", 0),
    ({"http__port": 0}, "http.port", 0),
    ({"mail.smtp.host": "localhost"}, "mail.smtp.host", "localhost"),
    ({"ice.host_addresses": ["127.0.0.1"]}, "ice.host_addresses", ["127.0.0.1"]),
    ({"storage.data_dir": "/srv/teleconsult"}, "storage.data_dir", "/srv/teleconsult"),
    ({"ice.transport_policy": "relay"}, "ice.transport_policy", "relay"),
    ({"ice.turn_credential_ttl": 600}, "ice.turn_credential_ttl", 600.0),
    ({"ice.servers": [{"urls": ["turn:127.0.0.1:3478"], "secret": "s"}]}, "ice.servers",
     [IceServerConfig(urls=["turn:127.0.0.1:3478"], secret="s")]),
])
def test_override_without_file(overrides: dict[str, Any], attribute: str, expected: Any) -> None:
    node: Any = load_config(None, **overrides)
    for name in attribute.split("."):
        node = getattr(node, name)
    assert node == expected


def test_override_wins_over_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), **{"http.port": 0, "ice.port_min": 40500})
    assert (config.http.port, config.http.public_url) == (0, "https://visio.example.org")
    assert (config.ice.port_min, config.ice.port_max) == (40500, 40999)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"http.prot": 0}, "unknown key 'http.prot'"),
    ({"nope": 1}, "unknown key 'nope'"),
    ({"http.port": "80"}, "'http.port' must be an integer"),
    ({"ice.port_min": 50000}, "'ice.port_min'"),
])
def test_bad_override_is_an_error(overrides: dict[str, Any], expected: str) -> None:
    message = load_error(None, **overrides)
    assert message.startswith("defaults: ")
    assert expected in message


# --- (h) the CLI ----------------------------------------------------------------------

LAUNCHERS = {
    "module": [sys.executable, "-m", "signaling.cli"],
    "console-script": [str(Path(sys.executable).parent / "teleconsult")],
}


def run_cli(launcher: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAUNCHERS[launcher], *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_cli_check_config_accepts_config_toml(launcher: str) -> None:
    result = run_cli(launcher, "check-config", "--config", str(CONFIG_TOML))
    assert result.returncode == 0, result.stderr
    assert f"{CONFIG_TOML}: ok" in result.stdout


@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize(("content", "expected"), [
    pytest.param(b"[http]\nprot = 80\n", "'http.prot'", id="unknown-key"),
    pytest.param(b'[mail.smtp]\nsecurity = "ssl"\n', "'mail.smtp.security'", id="invalid-value"),
    pytest.param(b"[http\n", "not valid TOML", id="not-toml"),
    pytest.param("caf\u00e9 = 1\n".encode("latin-1"), "not valid TOML", id="not-utf8"),
    pytest.param(None, "file not found", id="missing"),
    pytest.param("directory", "cannot read", id="directory"),
])
def test_cli_check_config_rejects_bad_file(
        tmp_path: Path, launcher: str, content: bytes | str | None, expected: str) -> None:
    path = tmp_path / "bad.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "directory":
        path.mkdir()
    result = run_cli(launcher, "check-config", "--config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"teleconsult: configuration error: {path}: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "red_first"), [("", True), ("[media]\nopus_red = false\n", False)])
def test_media_opus_red_decides_whether_the_answer_puts_red_first(tmp_path: Path, text: str, red_first: bool) -> None:
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from signaling.app import sfu_options
    from sfu.participant import _ask_opus_repair

    options = sfu_options(load_config(write(tmp_path, text)))
    assert options.opus_red is red_first
    offered = [RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111),
               RTCRtpCodecParameters(mimeType="audio/red", clockRate=48000, channels=2, payloadType=63)]
    answered = [RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)]
    _ask_opus_repair(answered, offered, options)
    assert [c.mimeType for c in answered] == (["audio/red", "audio/opus"] if red_first else ["audio/opus"])
    assert answered[-1].parameters["useinbandfec"] == 1  # Opus's own FEC either way


@pytest.mark.parametrize(("text", "floor"), [("", 0.5), ("[media]\nmax_playout_floor_ms = 0\n", 0.0),
                                             ("[media]\nmax_playout_floor_ms = 250\n", 0.25)])
def test_media_max_playout_floor_reaches_the_sfu_in_seconds(tmp_path: Path, text: str, floor: float) -> None:
    from signaling.app import sfu_options

    assert sfu_options(load_config(write(tmp_path, text))).max_playout_floor == floor


def test_media_realtime_priority_reaches_the_sfu(tmp_path: Path) -> None:
    from signaling.app import sfu_options

    assert sfu_options(load_config(write(tmp_path, ""))).realtime_priority == 0
    assert sfu_options(load_config(write(tmp_path, "[media]\nrealtime_priority = 10\n"))).realtime_priority == 10
