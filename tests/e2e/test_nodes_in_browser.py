"""Two real `teleconsult serve` nodes behind a balancer, two real browsers (issue 15 items 4-5)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from helpers.call_page import accept_notice, frames_decoded, shows, wait_for
from helpers.databases import PostgresServer, RedisServer
from helpers.site import Site, two_node_site
from playwright.async_api import Page

# the media path of the call this page is in now, once it is connected and decoding
NEW_MEDIA = """() => {
  const call = window.__teleconsult.call;
  return Boolean(call && call.pc && call.pc !== window.__oldPc && call.pc.connectionState === 'connected');
}"""


async def welcomed(page: Page) -> bool:
    return bool(await page.evaluate("() => Boolean(window.__teleconsult.client.welcome)"))


async def meet(site: Site, doctor: Page, patient: Page) -> None:
    """The practitioner opens node A's link, the patient node B's; both end in the call on the owner."""
    a, b = site.node("node-a"), site.node("node-b")
    await doctor.goto(site.demo["practitioner_link"])
    await wait_for(lambda: welcomed(doctor))  # node A claimed the consultation
    await patient.goto(site.demo["patient_link"].replace(a.base_url, b.base_url))
    # node B sent the patient's browser to the owner
    assert patient.url.startswith(a.base_url + "/c/"), patient.url
    await accept_notice(patient)
    await doctor.get_by_test_id("join").click()
    await patient.get_by_test_id("ready").click()
    await wait_for(lambda: shows(doctor, "blue"))
    await wait_for(lambda: shows(patient, "red"))


async def sees_again(page: Page, colour: str) -> bool:
    return bool(await page.evaluate(NEW_MEDIA)) and await frames_decoded(page) > 10 and await shows(page, colour)


async def test_both_browsers_come_back_on_the_survivor_when_the_owner_node_is_killed(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer, open_page: Any
) -> None:
    async with two_node_site(tmp_path, postgres_server, redis_server) as site:
        doctor, patient = await open_page("red"), await open_page("blue")
        await meet(site, doctor, patient)
        consultation = site.demo["consultation_id"]
        assert await site.owner(consultation) == "node-a"
        for page in (doctor, patient):
            await page.evaluate("() => { window.__oldPc = window.__teleconsult.call.pc; }")
        started = time.monotonic()
        site.node("node-a").kill()
        # each browser reconnects through the site's address, node B takes the call over,
        # and a new media path shows the other side's camera again
        await wait_for(lambda: sees_again(doctor, "blue"), timeout=45)
        await wait_for(lambda: sees_again(patient, "red"), timeout=45)
        print(f"takeover after SIGKILL: both browsers see each other again after {time.monotonic() - started:.1f} s")
        assert await site.owner(consultation) == "node-b"
        # the pages stayed where they were: their sockets went through the site's address
        for page in (doctor, patient):
            assert await page.evaluate("() => window.__teleconsult.client.url") == (
                f"ws://127.0.0.1:{site.balancer.port}" + "/c/" + page.url.split("/c/", 1)[1] + "/ws")
