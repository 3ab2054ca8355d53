"""The call on a bad network: the patient's leg goes through the impairment relay (tests/helpers/netimpair.py).

Each test sets the relay once both pictures flow, then asserts what each browser
sees by its own getStats()/requestVideoFrameCallback, never by wall-clock timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.call_page import WATCH_FREEZES, enter_call, frames_decoded, shows, wait_for
from helpers.netimpair import GilbertElliott, Impairment, RelayedOffers
from helpers.server import running_server
from playwright.async_api import Page

from clinic import Role
from sfu import Participant
from sfu.stats import participant_stats

# inbound camera (section 1) and everything sent by one page, cumulative
VIDEO_STATS = """async () => {
  const out = {frames: 0, freezes: 0, freezeSeconds: 0, nacks: 0, bytesSent: 0, at: performance.now(),
               targetDelay: 0, emitted: 0};
  (await window.__teleconsult.call.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && s.mid === '1') {
      out.frames = s.framesDecoded || 0; out.freezes = s.freezeCount || 0;
      out.freezeSeconds = s.totalFreezesDuration || 0; out.nacks = s.nackCount || 0;
      out.targetDelay = s.jitterBufferTargetDelay || 0; out.emitted = s.jitterBufferEmittedCount || 0;
    }
    if (s.type === 'outbound-rtp') out.bytesSent += s.bytesSent || 0;
  });
  return out;
}"""

# these tests look at the SFU objects of a call (peer connection, producers) or put a relay in its
# answers (helpers/netimpair.py patches the Participant class): rooms in this process
IN_PROCESS = {"sfu.workers": 1}


# the codec the page receives audio in, and how much of it had to be concealed
AUDIO_IN = """async () => {
  const stats = await window.__teleconsult.call.pc.getStats();
  const out = {codec: null, concealed: 0, samples: 0, energy: 0};
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.codec = s.codecId ? stats.get(s.codecId).mimeType : null;
      out.concealed = s.concealedSamples || 0; out.samples = s.totalSamplesReceived || 0;
      out.energy = s.totalAudioEnergy || 0;
    }
  });
  return out;
}"""


@pytest.fixture
def patient_relay() -> Iterator[RelayedOffers]:
    """The patient's peer connection goes through a relay; none of the product changes."""
    relays = RelayedOffers(seed=18)
    restore = relays.install(Participant, "handle_offer", lambda p: p.role == "patient")
    try:
        yield relays
    finally:
        restore()
        relays.close()


async def _busy_call(server: Any, open_page: Any) -> tuple[Page, Page]:
    # cameras that need a real bitrate, or a cap and a loss would cost nothing
    return await enter_call(await server.demo(), await open_page("red", busy=True), await open_page("blue", busy=True))


def hub_offer_sdp(server: Any) -> str:
    # the SDP the SFU answered the patient with
    (hub,) = server.hubs._hubs.values()
    return str(hub.participants[Role.PATIENT].pc.localDescription.sdp)


def _payload_type(sdp: str, codec: str) -> int:
    for line in sdp.splitlines():
        if line.startswith("a=rtpmap:") and line.split()[1].lower().startswith(codec + "/"):
            return int(line.split()[0].split(":")[1])
    raise AssertionError(f"{codec} not negotiated")


async def _watch(*pages: Page) -> list[dict[str, Any]]:
    for page in pages:
        await page.evaluate(WATCH_FREEZES)
    return [await page.evaluate(VIDEO_STATS) for page in pages]


async def _longest_gap(page: Page) -> float:
    return float(await page.evaluate("() => window.__longestGap"))


async def test_five_percent_loss_and_150_ms_rtt_never_freeze_the_picture(
        tmp_path: Path, open_page: Any, patient_relay: RelayedOffers) -> None:
    async with running_server(tmp_path / "data", **IN_PROCESS) as server:
        doctor, patient = await _busy_call(server, open_page)
        bad = Impairment(loss=0.05, delay=0.075)
        patient_relay.set(up=bad, down=bad)
        before = await _watch(doctor, patient)
        audio_before = [await page.evaluate(AUDIO_IN) for page in (doctor, patient)]
        await asyncio.sleep(5)
        mid = await doctor.evaluate(VIDEO_STATS)  # the floor needs a few repairs first
        await asyncio.sleep(3)
        counters = patient_relay.counters()
        # Opus went in RED both ways (the SFU answered it first): the payload type the browsers
        # gave it in the offer (their stats name the inner codec only)
        red_type = _payload_type(hub_offer_sdp(server), "red")
        assert counters["up"].payload_types[red_type] > 100 and counters["down"].payload_types[red_type] > 100
        assert counters["up"].lost > 20 and counters["down"].lost > 20, counters  # the loss happened
        # the operator's /stats figures see the round trip the relay adds (75 ms each way)
        (hub,) = server.hubs._hubs.values()
        stats = await participant_stats(hub.participants[Role.PATIENT])
        assert stats["rtt_ms"] is not None and 140 < stats["rtt_ms"] < 600, stats["rtt_ms"]
        assert any(d["packets_lost"] > 0 for d in stats["down"].values()), stats["down"]
        # the patient's downlink: some of what its transport-wide feedback reported lost was resent before
        # its NACK came (a lost NACK, a lost retransmission)
        assert stats["down"]["camera"]["feedback_repairs"] > 0, stats["down"]["camera"]
        # the patient's uplink: its repairs take about its round trip, and the doctor's browser, whose own
        # leg is short and clean, is told to wait that long for the patient's picture (sfu/playout.py)
        floor = stats["up"]["camera"]["playout_floor_ms"]
        assert 140 < floor <= 500, stats["up"]["camera"]
        answer = await doctor.evaluate("() => window.__teleconsult.call.pc.remoteDescription.sdp")
        assert "rtp-hdrext/playout-delay" in answer.split("m=video", 1)[1]
        after = await doctor.evaluate(VIDEO_STATS)
        # what the doctor's jitter buffer aimed at over the last 3 s: 160-284 ms on a quiet box, once 127 with the
        # whole suite on the two cores (floor 181); 38 ms with max_playout_floor_ms = 0
        target = (after["targetDelay"] - mid["targetDelay"]) / max(1, after["emitted"] - mid["emitted"])
        print("doctor's jitter buffer target", round(1000 * target), "ms; floor", floor, "ms")
        assert target > 0.5 * floor / 1000, (target, floor)
        for page, start in zip((doctor, patient), before):
            after = await page.evaluate(VIDEO_STATS)
            longest = await _longest_gap(page)
            print(page is doctor and "doctor" or "patient", after["frames"] - start["frames"], "frames,",
                  after["freezes"] - start["freezes"], "freezes, longest gap", round(longest), "ms")
            assert after["frames"] - start["frames"] > 8 * 15 * 0.7  # the 15 fps camera kept coming
            assert longest < 1000, longest  # never a picture on screen for a second
            assert after["nacks"] > start["nacks"]  # what was lost was asked for again
        for page, start in zip((doctor, patient), audio_before):
            audio = await page.evaluate(AUDIO_IN)
            concealed = (audio["concealed"] - start["concealed"]) / max(1, audio["samples"] - start["samples"])
            # heard all along; how much was concealed is the benchmark's business (a busy
            # box conceals too: 1-2 % here, 5 % at a load of 28)
            print("audio", f"{100 * concealed:.1f} % concealed")
            assert audio["energy"] > start["energy"]


async def test_after_a_five_second_outage_the_picture_comes_back_by_itself(
        tmp_path: Path, open_page: Any, patient_relay: RelayedOffers) -> None:
    async with running_server(tmp_path / "data", **IN_PROCESS) as server:
        doctor, patient = await _busy_call(server, open_page)
        patient_relay.outage(5.0)
        await asyncio.sleep(5.0)
        stalled = {page: await frames_decoded(page) for page in (doctor, patient)}
        counters = patient_relay.counters()
        assert counters["up"].outage > 100 and counters["down"].outage > 100, counters
        # no click, no reload: both pictures move again, in the right colours
        for page in (doctor, patient):
            await wait_for(lambda p=page: _more_than(p, stalled[p] + 15), timeout=15)
        assert await shows(doctor, "blue") and await shows(patient, "red")


async def _sent_kbps(page: Page, seconds: float) -> float:
    first = await page.evaluate(VIDEO_STATS)
    await asyncio.sleep(seconds)
    last = await page.evaluate(VIDEO_STATS)
    return 8 * (last["bytesSent"] - first["bytesSent"]) / (last["at"] - first["at"])


async def _more_than(page: Page, frames: int) -> bool:
    return await frames_decoded(page) > frames


async def test_a_300_kbits_downlink_keeps_the_other_sender_below_the_cap(
        tmp_path: Path, open_page: Any, patient_relay: RelayedOffers) -> None:
    # the patient is on a 300 kbit/s link from the start (as on a weak 4G cell)
    patient_relay.set(down=Impairment(rate=300_000))
    async with running_server(tmp_path / "data", **IN_PROCESS) as server:
        doctor, patient = await _busy_call(server, open_page)
        (hub,) = server.hubs._hubs.values()
        camera = hub.participants[Role.PRACTITIONER].producers["camera"]
        await asyncio.sleep(4)  # the patient's estimate reaches the doctor's encoder
        received = await frames_decoded(patient)
        await patient.evaluate(WATCH_FREEZES)
        kbps = await _sent_kbps(doctor, 5.0)
        longest = await _longest_gap(patient)
        consumer = hub.participants[Role.PATIENT].consumers["camera"]
        print(f"doctor sends {kbps:.0f} kbit/s, asked {camera.sent_estimate}, repair keyframes {consumer.repair_keyframes};"
              f" patient decoded {await frames_decoded(patient) - received} frames, longest gap {longest:.0f} ms;"
              f" relay {patient_relay.counters()['down']}")
        assert kbps < 300  # the doctor's camera and microphone fit the patient's link
        # the receiver keeps decoding (issue 18 item 4): the publisher is asked for what the patient's leg
        # leaves to video once audio (RED), retransmissions and headers are counted, and NACKs the cache
        # cannot answer (the first seconds overflow the link) bring a keyframe instead of a standstill.
        # Before both, this decoded 2-81 frames in these 5 s with gaps up to 3.3 s; after, 49-77 (15 fps camera).
        assert await frames_decoded(patient) >= received + 25  # at least 5 frames a second
        assert longest < 2000, longest


async def test_jitter_on_the_patients_downlink_does_not_hold_the_doctors_camera_down(
        tmp_path: Path, open_page: Any, patient_relay: RelayedOffers) -> None:
    # the benchmark's hotel Wi-Fi: 2 % bursty loss and 80 ms of jitter (order kept: a late packet holds back
    # those behind it) both ways, from the start.  With transport-wide feedback the SFU estimates the
    # patient's downlink itself (sfu/bwe.py); its first version cut a 1 Mbit/s estimate to ~100 kbit/s at
    # the first overuse of a call just started and asked the doctor's camera for 30 kbit/s here.
    bad = Impairment(burst=GilbertElliott.with_mean(0.02, 3), jitter=0.08)
    patient_relay.set(up=bad, down=bad)
    async with running_server(tmp_path / "data", **IN_PROCESS) as server:
        doctor, patient = await _busy_call(server, open_page)
        (hub,) = server.hubs._hubs.values()
        camera = hub.participants[Role.PRACTITIONER].producers["camera"]
        consumer = hub.participants[Role.PATIENT].consumers["camera"]
        await asyncio.sleep(8)
        received = await frames_decoded(patient)
        kbps = await _sent_kbps(doctor, 5.0)
        stats = await participant_stats(hub.participants[Role.PATIENT])
        print(f"doctor sends {kbps:.0f} kbit/s, asked {camera.sent_estimate}, patient's leg estimated"
              f" {consumer.estimate} by {consumer.estimated_by} (REMB {consumer.remb}); relay {patient_relay.counters()['down']}")
        assert patient_relay.counters()["down"].delivered > 500  # the jittered link carried the call
        assert stats["down"]["camera"]["estimated_by"] == "transport-cc"
        # both halves ran: the SFU told the patient's browser what arrived, and read what the browser got
        tcc = stats["transport_cc"]
        assert tcc["feedback_sent"] > 50 and tcc["feedback_received"] > 50 and tcc["feedback_malformed"] == 0, tcc
        assert tcc["packets_lost"] > 0  # the relay's bursty loss, seen in the browser's feedback
        # the broken estimator asked for 30 kbit/s here; a working one, 1.0-1.7 Mbit/s on a quiet box, and once
        # 0.54 (estimate 0.67) with the whole suite on the two cores: the floor is well above the trickle
        assert consumer.estimate is not None and consumer.estimate > 500_000
        assert camera.sent_estimate is not None and camera.sent_estimate > 400_000
        assert kbps > 400  # the doctor's busy camera is not held at a trickle
        assert await frames_decoded(patient) >= received + 50  # and the patient sees it move


# what one page's microphone encoder is set to, and what it sent (all of its outbound audio)
AUDIO_OUT = """async () => {
  const out = {target: null, bytes: 0, packets: 0};
  (await window.__teleconsult.call.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'audio') {
      if (s.targetBitrate !== undefined) out.target = s.targetBitrate;
      out.bytes += s.bytesSent || 0; out.packets += s.packetsSent || 0;
    }
  });
  return out;
}"""


async def test_each_browsers_voice_encoder_keeps_to_the_operators_audio_cap(tmp_path: Path, open_page: Any) -> None:
    # [media] max_audio_kbps reaches both browsers (welcome) and their Opus encoders run at it, not at
    # Chromium's default: in RED every leg carries the voice twice, so what the cap is decides what a
    # narrow link leaves the picture (64 kbit/s took ~115 of a 300 kbit/s downlink, docs/performance.md).
    # 24, not the default 32, so that the test sees the setting and not a browser default.
    async with running_server(tmp_path / "data", **{"media.max_audio_kbps": 24}) as server:
        doctor, patient = await enter_call(await server.demo(), await open_page("red"), await open_page("blue"))
        heard = [await page.evaluate(AUDIO_IN) for page in (doctor, patient)]
        sent = [await page.evaluate(AUDIO_OUT) for page in (doctor, patient)]
        for page in (doctor, patient):
            await wait_for(lambda p=page: _audio_target_known(p), timeout=10)
        await asyncio.sleep(3)
        for page, before, start in zip((doctor, patient), heard, sent):
            out = await page.evaluate(AUDIO_OUT)
            print("audio target", out["target"], "bit/s;", out["packets"] - start["packets"], "packets sent")
            assert 6000 <= out["target"] <= 24000, out
            assert out["packets"] - start["packets"] > 100  # the microphone kept sending (20 ms packets)
        for page, before in zip((doctor, patient), heard):
            assert (await page.evaluate(AUDIO_IN))["energy"] > before["energy"]  # and the other side hears it


async def _audio_target_known(page: Page) -> bool:
    return (await page.evaluate(AUDIO_OUT))["target"] is not None
