"""The browser's ICE server list and its time-limited TURN credentials (TURN REST convention)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
from types import SimpleNamespace
from typing import Any

import pytest

from clinic import Role
from signaling.call.session import Session
from signaling.call.turn import ice_servers_for, turn_rest_credentials
from signaling.config import IceConfig, IceServerConfig, load_config

TURN_UDP = "turn:turn.example.org:3478?transport=udp"
TURNS = "turns:turn.example.org:5349"
STUN = "stun:stun.example.org:3478"
NOW = 1_700_000_000.0


def rest_credential(secret: str, username: str) -> str:
    """coturn's documented formula, written out here independently of signaling.call.turn."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


# --- known answers, computed once outside Python:
#   printf '%s' "1700086400:9f3a61c2" | openssl dgst -sha1 -hmac "north-wind-42" -binary | base64

KNOWN = [
    pytest.param("north-wind-42", "9f3a61c2", 1_700_086_400.0, "1700086400:9f3a61c2", "Yf26ERH7Q1331XK5QxLwwu+RxpY=", id="openssl-vector"),
    pytest.param("north-wind-42", "9f3a61c2", 1_700_086_400.9, "1700086400:9f3a61c2", "Yf26ERH7Q1331XK5QxLwwu+RxpY=", id="expiry-truncated"),
    pytest.param("s", "x", 86_400.0, "86400:x", "B5frwpVouXgre/7BYIRJwBWsjBU=", id="short-secret"),
]


@pytest.mark.parametrize(("secret", "user_id", "expires_at", "username", "credential"), KNOWN)
def test_rest_credentials_known_answers(secret: str, user_id: str, expires_at: float, username: str, credential: str) -> None:
    assert turn_rest_credentials(secret, user_id, expires_at) == (username, credential)
    assert rest_credential(secret, username) == credential


# --- the list a browser gets ----------------------------------------------------------

CASES: list[Any] = [
    pytest.param(IceConfig(), "abcd1234", [], id="none-by-default"),
    pytest.param(
        IceConfig(servers=[IceServerConfig(urls=[STUN])]), "abcd1234",
        [{"urls": [STUN]}], id="stun-without-credentials"),
    pytest.param(
        IceConfig(servers=[IceServerConfig(urls=[TURN_UDP, TURNS], username="tc", credential="pw")]), "abcd1234",
        [{"urls": [TURN_UDP, TURNS], "username": "tc", "credential": "pw"}], id="static-credentials"),
    pytest.param(
        IceConfig(servers=[IceServerConfig(urls=[TURN_UDP], username="tc")]), "abcd1234",
        [{"urls": [TURN_UDP], "username": "tc"}], id="empty-credential-left-out"),
    pytest.param(
        IceConfig(servers=[IceServerConfig(urls=[TURN_UDP, TURNS], secret="north-wind-42")]), "abcd1234",
        [{"urls": [TURN_UDP, TURNS], "username": "1700086400:abcd1234",
          "credential": rest_credential("north-wind-42", "1700086400:abcd1234")}], id="secret-default-ttl"),
    pytest.param(
        IceConfig(servers=[IceServerConfig(urls=[TURN_UDP], secret="north-wind-42")], turn_credential_ttl=600.0),
        "abcd1234",
        [{"urls": [TURN_UDP], "username": "1700000600:abcd1234",
          "credential": rest_credential("north-wind-42", "1700000600:abcd1234")}], id="secret-short-ttl"),
    pytest.param(
        IceConfig(servers=[
            IceServerConfig(urls=[STUN]),
            IceServerConfig(urls=[TURN_UDP], secret="one"),
            IceServerConfig(urls=[TURNS], secret="two"),
            IceServerConfig(urls=["turn:old.example.org"], username="u", credential="c"),
        ]), "ffff0000",
        [{"urls": [STUN]},
         {"urls": [TURN_UDP], "username": "1700086400:ffff0000", "credential": rest_credential("one", "1700086400:ffff0000")},
         {"urls": [TURNS], "username": "1700086400:ffff0000", "credential": rest_credential("two", "1700086400:ffff0000")},
         {"urls": ["turn:old.example.org"], "username": "u", "credential": "c"}], id="mixed-in-order"),
]


@pytest.mark.parametrize(("config", "user_id", "expected"), CASES)
def test_ice_servers_for(config: IceConfig, user_id: str, expected: list[dict[str, Any]]) -> None:
    assert ice_servers_for(config, user_id, NOW) == expected


def test_credentials_differ_per_user_and_per_time() -> None:
    config = IceConfig(servers=[IceServerConfig(urls=[TURN_UDP], secret="north-wind-42")])
    a = ice_servers_for(config, "aaaa", NOW)[0]
    b = ice_servers_for(config, "bbbb", NOW)[0]
    later = ice_servers_for(config, "aaaa", NOW + 1)[0]
    assert len({a["credential"], b["credential"], later["credential"]}) == 3
    assert later["username"] == f"{int(NOW) + 86400 + 1}:aaaa"


def test_the_list_is_a_copy() -> None:
    config = IceConfig(servers=[IceServerConfig(urls=[TURN_UDP])])
    ice_servers_for(config, "x", NOW)[0]["urls"].append("turn:evil")
    assert config.servers[0].urls == [TURN_UDP]


# --- what the welcome message carries -----------------------------------------------

@pytest.mark.parametrize(("overrides", "policy"), [
    ({}, "all"),
    ({"ice.transport_policy": "relay"}, "relay"),
])
def test_welcome_carries_fresh_credentials_and_the_policy(
        overrides: dict[str, Any], policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(None, **{"ice.servers": [{"urls": [TURN_UDP], "secret": "north-wind-42"}],
                                  "ice.turn_credential_ttl": 3600, **overrides})
    monkeypatch.setattr("signaling.call.session.time", SimpleNamespace(time=lambda: NOW))
    hub = SimpleNamespace(id="c0ffee", scheduled_at=datetime.datetime(2030, 1, 1, 9, tzinfo=datetime.UTC))
    session = Session(ws=SimpleNamespace(), role=Role.PATIENT, hub=hub, config=config)  # type: ignore[arg-type]
    welcome = session.welcome()
    username = f"{int(NOW) + 3600}:{session.id}"
    assert welcome["ice_servers"] == [{"urls": [TURN_UDP], "username": username,
                                       "credential": rest_credential("north-wind-42", username)}]
    assert welcome["ice_transport_policy"] == policy
