"""Every HTML page carries the security headers; HSTS only when the site is served over HTTPS."""

from __future__ import annotations

from pathlib import Path

from helpers.practice import Browserless
from helpers.server import running_server


async def test_every_html_page_carries_the_security_headers(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        token = demo["practitioner_link"].rsplit("/", 1)[1]
        browser = Browserless(server.base_url)
        try:
            login_page = await browser.get("/login")
            response = await browser.login(demo["practitioner"]["email"], demo["practitioner"]["password"])
            assert response.status == 303
            consultation = await server.clinic.get_consultation(demo["consultation_id"])
            pages = ["/", "/patients", f"/records/{consultation.patient_id}", f"/c/{token}",
                      f"/c/{token}/closing", "/d/" + "x" * 43, "/nowhere"]
            for path in ["/login", *pages]:
                r, html = login_page if path == "/login" else await browser.get(path)
                assert "<html" in html.lower(), path
                h = r.headers
                csp = h["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
                assert h["Referrer-Policy"] == "no-referrer"
                assert h["Permissions-Policy"] == "camera=(self), microphone=(self), display-capture=(self)"
                assert "Strict-Transport-Security" not in h, path  # plain HTTP: no HSTS
        finally:
            await browser.close()


async def test_hsts_when_the_public_address_is_https(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"http.public_url": "https://visio.example.org"}) as server:
        browser = Browserless(server.base_url)
        try:
            r, _ = await browser.get("/login")
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
        finally:
            await browser.close()


async def test_a_call_page_may_reconnect_through_the_site_address(tmp_path: Path) -> None:
    # several nodes: a page whose node died reconnects its socket through [cluster] site_url
    async with running_server(tmp_path / "data", **{"cluster.site_url": "https://teleconsult.example"}) as server:
        demo = await server.demo()
        browser = Browserless(server.base_url)
        try:
            r, _ = await browser.get(demo["patient_link"].removeprefix(server.base_url))
            csp = r.headers["Content-Security-Policy"]
            assert "connect-src 'self' wss://teleconsult.example;" in csp and "script-src 'self'" in csp
        finally:
            await browser.close()
