"""How tests and benchmarks launch Debian's Chromium (see ../shared/TESTING.md)."""

from __future__ import annotations

import os
from typing import Any

from playwright.async_api import Browser, Page, Playwright

CHROMIUM = os.environ.get("TELECONSULT_CHROMIUM", "/usr/bin/chromium")

# headless as root, loopback WebRTC, fake devices and permission prompts
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


# every page reports what its Content-Security-Policy blocked (the event fires before any page script runs)
CSP_SPY = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


async def launch_page(pw: Playwright, browsers: list[Browser], args: list[str], *, name: str,
                      viewport: tuple[int, int] = (1024, 700), permissions: list[str] | None = None,
                      csp_violations: list[str] | None = None) -> Page:
    """A page in a Chromium of its own (kept in `browsers`, for the caller to close); its console goes to stdout.

    With `csp_violations`, every Content-Security-Policy violation of its pages is appended there.
    """
    browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    browsers.append(browser)
    context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, permissions=permissions)
    if csp_violations is not None:
        await context.add_init_script(CSP_SPY)
    page = await context.new_page()

    def console(m: Any) -> None:
        print(f"[{name} console] {m.type}: {m.text}")
        if csp_violations is not None and (m.text.startswith("CSP violation") or "Content Security Policy" in m.text):
            csp_violations.append(f"{name}: {m.text}")

    page.on("console", console)
    return page
