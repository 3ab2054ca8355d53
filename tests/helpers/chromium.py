"""How tests and benchmarks launch Debian's Chromium (see ../shared/TESTING.md)."""

from __future__ import annotations

import os

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
