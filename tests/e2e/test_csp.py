"""The Content-Security-Policy is in force in Chromium, and the browser tests would notice a breach.

Every browser test fails on a CSP violation (tests/e2e/conftest.py); the
practice-flow and consultation tests load every page (login, day list, record,
waiting room, call, closing, the patient's document page) under the policy.
This one proves the spy works: an inline script and an inline style are
blocked and reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.server import running_server


async def test_inline_script_and_style_are_blocked_and_reported(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        page = await open_page("red")
        await page.goto(server.base_url + "/login")
        await page.get_by_test_id("login-email").wait_for()
        assert open_page.csp_violations == []  # the page itself is clean
        ran = await page.evaluate("""() => new Promise((done) => {
            window.__ran = false;
            const s = document.createElement("script");
            s.textContent = "window.__ran = true";
            document.body.appendChild(s);
            const d = document.createElement("div");
            d.innerHTML = '<p style="color: red">x</p>';
            document.body.appendChild(d);
            setTimeout(() => done(window.__ran), 300);
        })""")
        assert ran is False  # the inline script never ran
        seen = list(open_page.csp_violations)
        open_page.csp_violations.clear()  # provoked on purpose: not a failure of the app
        assert any("script-src" in v for v in seen), seen
        assert any("style-src" in v for v in seen), seen
