"""Issue 17 item 5: login limits that hold under concurrency and never lock the owner out.

Real concurrent HTTP requests against a real server on loopback.  Before the fix
the limit was checked before the queue of password checks and counted after it:
30 simultaneous wrong guesses were 30 checks, a right password among them logged
in, and five wrong guesses from anywhere locked the owner out for 15 minutes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from helpers.practice import Browserless, sql
from helpers.server import Running, running_server
from signaling.config import load_config
from signaling.errors import ConfigError

PASSWORD = "correct horse battery"
OWNER = "owner@example.org"


async def attempt(session: aiohttp.ClientSession, server: Running, csrf: str, password: str,
                  address: str | None = None) -> tuple[int, str]:
    headers = {"X-Forwarded-For": address} if address else {}
    async with session.post(server.base_url + "/login", allow_redirects=False, headers=headers,
                            data={"email": OWNER, "password": password, "csrf": csrf}) as r:
        page = await r.text()
        marker = "login.slowed" if "login.slowed" in page else "login.too-many" if "too-many" in page else ""
        return r.status, marker


async def test_simultaneous_guesses_are_each_counted_before_any_check(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:  # defaults: 5 per account and address
        await server.clinic.add_practitioner(OWNER, PASSWORD, "Dr Owner")
        c = Browserless(server.base_url)
        try:
            csrf = await c.csrf("/login")
            guesses = [attempt(c.session, server, csrf, f"wrong {i}") for i in range(30)]
            guesses.insert(20, attempt(c.session, server, csrf, PASSWORD))  # a right one among them
            statuses = Counter(status for status, _ in await asyncio.gather(*guesses))
            # only 5 attempts were let through to a password check, whatever their order;
            # the right one logged in only if it was one of those 5
            assert statuses[401] + statuses[303] == 5, statuses
            assert statuses[429] == 26, statuses
            rows = sql(server, "SELECT COUNT(*) FROM attempt WHERE scope = 'login-pair'")[0][0]
            assert rows == statuses[401]
            # and now the right password from that address is refused too
            assert (await attempt(c.session, server, csrf, PASSWORD))[0] == 429
        finally:
            await c.close()


async def test_a_flood_from_elsewhere_slows_strangers_but_not_the_owner(tmp_path: Path) -> None:
    overrides = {"http.trusted_proxies": ["127.0.0.1/32"]}  # the test plays the proxy; ceiling: the default 10
    async with running_server(tmp_path / "data", **overrides) as server:
        await server.clinic.add_practitioner(OWNER, PASSWORD, "Dr Owner")
        home = "198.51.100.7"
        owner = Browserless(server.base_url)
        try:
            assert (await attempt(owner.session, server, await owner.csrf("/login"), PASSWORD, home))[0] == 303
        finally:
            await owner.close()
        c = Browserless(server.base_url)  # the attacker, then strangers and the owner without a session
        try:
            csrf = await c.csrf("/login")
            # an attacker spread over 8 addresses guesses 40 times at once
            flood = [attempt(c.session, server, csrf, f"guess {i}", f"203.0.113.{i % 8}") for i in range(40)]
            results = await asyncio.gather(*flood)
            checked = sum(1 for status, _ in results if status == 401)
            assert checked == 10, Counter(results)  # the ceiling, then one per minute at most
            assert {marker for status, marker in results if status == 429} == {"login.slowed"}
            # a stranger's address is slowed down, with a Retry-After...
            async with c.session.post(server.base_url + "/login", allow_redirects=False,
                                      headers={"X-Forwarded-For": "192.0.2.99"},
                                      data={"email": OWNER, "password": PASSWORD, "csrf": csrf}) as r:
                assert r.status == 429 and 0 < int(r.headers["Retry-After"]) <= 60
            # ...but the owner at their known address logs in at once, right password or not
            assert (await attempt(c.session, server, csrf, "typo", home))[0] == 401
            assert (await attempt(c.session, server, csrf, PASSWORD, home))[0] == 303
        finally:
            await c.close()


def test_limits_above_asvs_hundred_an_hour_are_refused() -> None:
    with pytest.raises(ConfigError, match="login_slowdown_seconds"):
        load_config(None, **{"accounts.login_account_ceiling": 50, "accounts.login_slowdown_seconds": 10.0})
    load_config(None, **{"accounts.login_account_ceiling": 40, "accounts.login_slowdown_seconds": 60.0})
