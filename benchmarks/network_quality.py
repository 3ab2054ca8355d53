"""Call quality on impaired networks: our SFU side by side with a direct browser-to-browser call.

Two Chromium with fake cameras (640×480, 30 fps, with grain so the encoder needs
a real bitrate) call each other, for each scenario, twice:

- **direct**: a minimal page (`benchmarks/direct/index.html`, not the product),
  the SDP passed between the pages by this script, the patient's side behind
  the impairment relay (`tests/helpers/netimpair.py`); it lays the pictures out
  as the product's call page does, so that both arms load the browsers alike
  (`--direct-layout bare`: the remote video alone, the reference before 2026-12-06);
- **sfu**: the product, a real server in a process of its own (`--serve`), the
  patient's leg to the SFU behind the same relay (in that process) with the same
  impairment and seed.

The impairment starts after the warm-up; over the window each browser's
`getStats()` and `requestVideoFrameCallback` give, per receiving side:
decoded fps, freezes (> 500 ms without a new frame) per minute, total freeze
time, hitches (> 200 ms without one) per minute, audio concealed-samples ratio,
RTT, video jitter-buffer delay, packets lost after repair (NACK/RTX), keyframes
requested (PLI+FIR), and the bitrate
the other side's sender settled on (last third of the window); plus, for the
outage, how long the picture took to come back after the network did, and for
the cap, when the sender went under it for good: the doctor's browser's own
send rate (`settle_under_cap_s`) and the rate put on the capped link itself
(`link_settle_under_cap_s`, `link_kbps`: the relay's count).  Direct the two are
one sender; through the SFU the link's sender is the SFU, which may send the
patient less than the doctor's browser sends it.  Then the SFU/direct ratio.

Run as root in a loopback-only namespace:

    unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/network_quality.py --quick'
"""

from __future__ import annotations

import argparse
import functools
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from helpers.chromium import CHROMIUM, FLAGS  # type: ignore[import-not-found]  # noqa: E402
from helpers.netimpair import GilbertElliott, Impairment, RelayedOffers, relay_offer  # type: ignore[import-not-found]  # noqa: E402
from helpers.y4m import write_y4m  # type: ignore[import-not-found]  # noqa: E402
from sfu.looplag import LoopLag  # noqa: E402

FREEZE_MS = 500
STALL_MS = 200


@dataclass(frozen=True)
class Scenario:
    name: str
    up: Impairment  # patient → other side
    down: Impairment  # other side → patient
    outage: float = 0.0  # seconds of total outage, a third into the window
    cap: int = 0  # the downlink cap, to time the sender's settling


SCENARIOS = [
    Scenario("clean", Impairment(), Impairment()),
    Scenario("loss5-rtt150", Impairment(loss=0.05, delay=0.075), Impairment(loss=0.05, delay=0.075)),
    Scenario("bursty2-jitter80",
             Impairment(burst=GilbertElliott.with_mean(0.02, 3), jitter=0.08),
             Impairment(burst=GilbertElliott.with_mean(0.02, 3), jitter=0.08)),
    Scenario("cap300-down", Impairment(), Impairment(rate=300_000), cap=300_000),
    Scenario("outage5", Impairment(), Impairment(), outage=5.0),
]

# rVFC on the remote video: gaps over FREEZE_MS (and when each began, ms into the window), gaps over STALL_MS
# (a hitch: six frames of a 30 fps camera; more of them than freezes, so they show a change in repair delays
# that freezes, a few a run, cannot), and the first frame after a mark
WATCH = """([selector, freezeMs, stallMs]) => {
  const v = document.querySelector(selector);
  const w = window.__watch = {gaps: [], starts: [], t0: performance.now(), last: null, frames: 0, after: null,
                              firstAfter: null, stalls: []};
  const tick = (now) => {
    if (w.last !== null && now - w.last > stallMs) w.stalls.push([w.last - w.t0, now - w.last]);
    if (w.last !== null && now - w.last > freezeMs) { w.gaps.push(now - w.last); w.starts.push(w.last - w.t0); }
    w.last = now; w.frames++;
    if (w.after !== null && w.firstAfter === null && now >= w.after) w.firstAfter = now;
    v.requestVideoFrameCallback(tick);
  };
  v.requestVideoFrameCallback(tick);
}"""

# cumulative counters of one page's peer connection (the busiest stream of each kind)
STATS = """async (path) => {
  const pc = path.split('.').reduce((o, k) => o && o[k], window);
  const o = {at: performance.now(), frames: 0, jbDelay: 0, jbCount: 0, lost: 0, pli: 0, concealed: 0, samples: 0,
             sentBytes: 0, videoSentBytes: 0, headerBytes: 0, resentBytes: 0, rtt: null, nacks: 0, frozenNow: 0,
             available: null, target: null, limitation: null};
  if (!pc) return o;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && (s.framesDecoded || 0) >= o.frames) {
      o.frames = s.framesDecoded || 0; o.jbDelay = s.jitterBufferDelay || 0; o.jbCount = s.jitterBufferEmittedCount || 0;
      o.videoLost = s.packetsLost || 0; o.pli = (s.pliCount || 0) + (s.firCount || 0); o.nacks = s.nackCount || 0;
    }
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      o.concealed += s.concealedSamples || 0; o.samples += s.totalSamplesReceived || 0; o.audioLost = s.packetsLost || 0;
      o.audioJbDelay = s.jitterBufferDelay || 0; o.audioJbCount = s.jitterBufferEmittedCount || 0;
      o.audioJitter = s.jitter || 0;
    }
    if (s.type === 'outbound-rtp') {
      const bytes = (s.bytesSent || 0) + (s.headerBytesSent || 0);
      o.sentBytes += bytes;
      o.headerBytes += s.headerBytesSent || 0;  // RTP headers and padding (probes)
      o.resentBytes += s.retransmittedBytesSent || 0;
      if (s.kind === 'video') {
        o.videoSentBytes += bytes;
        if (s.targetBitrate !== undefined) o.target = s.targetBitrate;
        if (s.qualityLimitationReason !== undefined) o.limitation = s.qualityLimitationReason;
      }
    }
    if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate !== undefined) {
      o.available = s.availableOutgoingBitrate;
    }
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) o.rtt = s.currentRoundTripTime;
  });
  o.lost = (o.videoLost || 0) + (o.audioLost || 0);
  const w = window.__watch;
  if (w && w.last !== null && performance.now() - w.last > %d) o.frozenNow = performance.now() - w.last;
  return o;
}""" % FREEZE_MS


@dataclass
class Side:
    """One browser in a call: its page, where its peer connection is, its remote video."""

    name: str
    page: Any
    pc_path: str
    video: str

    async def stats(self) -> dict[str, Any]:
        return dict(await self.page.evaluate(STATS, self.pc_path))


# (doctor, patient, start an outage, set the impairments, the bytes put on the patient's downlink so far,
#  the late wakes of the loop that runs the relay (and, through the SFU, the SFU): [(time.monotonic(), s late)])
Call = tuple[Side, Side, Callable[[float], None], Callable[[Impairment, Impairment], None],
             Callable[[], Awaitable[int]], Callable[[float], Awaitable[list[tuple[float, float]]]]]

# the loop that runs the relay (and the SFU) is watched this often: a 10-ms-late wake holds every packet by as much
LAG_PERIOD = 0.01


async def direct_call(pw: Any, tmp: Path, scenario: Scenario, seed: int, cleanup: list[Callable[[], Any]],
                      layout: str = "stage") -> Call:
    """Two pages of benchmarks/direct (laid out as `layout`), the patient's offer and the doctor's answer through
    the relay."""
    app = web.Application()
    app.router.add_static("/", ROOT / "benchmarks" / "direct")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    cleanup.append(runner.cleanup)
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    doctor = await _page(pw, tmp, "red", cleanup)
    patient = await _page(pw, tmp, "blue", cleanup)
    for page in (doctor, patient):
        await page.goto(f"http://127.0.0.1:{port}/index.html?layout={layout}")
    offer = await patient.evaluate("() => makeOffer()")
    answer, relay = await relay_offer(offer, lambda sdp: doctor.evaluate("(sdp) => answerOffer(sdp)", sdp), seed=seed)
    cleanup.append(relay.close)
    await patient.evaluate("(sdp) => acceptAnswer(sdp)", answer)

    async def offered() -> int:
        return relay.down.counters.offered_bytes if relay.down is not None else 0

    lag = LoopLag(LAG_PERIOD)  # the relay runs in this process's loop
    lag.start()
    cleanup.append(lag.stop)

    async def late(since: float) -> list[tuple[float, float]]:
        return lag.late_wakes(since)

    return (Side("doctor", doctor, "pc", "#remote"), Side("patient", patient, "pc", "#remote"),
            relay.outage, lambda up, down: relay.set(up, down), offered, late)


async def sfu_call(pw: Any, tmp: Path, scenario: Scenario, seed: int, cleanup: list[Callable[[], Any]],
                   congestion_control: str = "transport-cc", diag: bool = False, realtime: int = 0) -> Call:
    """The product: a real server in its own process (`--serve`, the patient's leg through the
    relay there), both sides enter the call through the UI."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", "--seed", str(seed), "--congestion-control", congestion_control,
        "--server-realtime", str(realtime),
        *(["--diag"] if diag else []), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    cleanup.append(lambda: _stop(proc))
    assert proc.stdin is not None and proc.stdout is not None
    links = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
    stdin, stdout = proc.stdin, proc.stdout

    def command(**what: Any) -> None:
        stdin.write((json.dumps(what) + "\n").encode())

    doctor = await _page(pw, tmp, "red", cleanup)
    patient = await _page(pw, tmp, "blue", cleanup)
    await doctor.goto(links["doctor"])
    await patient.goto(links["patient"])
    await patient.get_by_test_id("consent-accept").click()  # the teleconsultation notice (issue 19)
    await doctor.get_by_test_id("join").click()
    await patient.get_by_test_id("ready").click()
    video = '[data-testid="remote-video"]'

    async def offered() -> int:
        command(do="offered")
        return int(json.loads(await asyncio.wait_for(stdout.readline(), 10))["offered"])

    async def late(since: float) -> list[tuple[float, float]]:
        command(do="late", since=since)
        return [tuple(x) for x in json.loads(await asyncio.wait_for(stdout.readline(), 10))["late"]]

    return (Side("doctor", doctor, "__teleconsult.call.pc", video), Side("patient", patient, "__teleconsult.call.pc", video),
            lambda seconds: command(do="outage", seconds=seconds),
            lambda up, down: command(do="set", up=asdict(up), down=asdict(down)), offered, late)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


def _impairment(d: dict[str, Any]) -> Impairment:
    burst = GilbertElliott(**d["burst"]) if d["burst"] else None
    return Impairment(**{**d, "burst": burst, "outages": tuple(tuple(o) for o in d["outages"])})


async def serve(seed: int, congestion_control: str, diag: bool = False, realtime: int = 0) -> None:
    """The server side of the SFU call, in its own process so that it has a core of its own:
    prints the links as JSON, then obeys {"do": "set"|"outage", ...} lines on stdin.  With `diag`,
    prints to stderr every half second what the SFU does on the patient's downlink."""
    from helpers.server import running_server  # type: ignore[import-not-found]
    from sfu import Participant

    relays = RelayedOffers(seed=seed)
    seen: dict[str, Any] = {}  # role -> its newest participant

    def patient(p: Any) -> bool:
        seen[p.role] = p
        return bool(p.role == "patient")

    relays.install(Participant, "handle_offer", patient)
    # held here for the life of the server: the loop keeps only a weak reference to a task
    diagnosis = asyncio.get_running_loop().create_task(_diagnose(relays, seen)) if diag else None
    loop = asyncio.get_running_loop()
    lag = LoopLag(LAG_PERIOD)  # the SFU and the relay run in this loop
    lag.start()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with tempfile.TemporaryDirectory(prefix="netq-server-") as tmp:
        # one process: the relay is patched into this process's answers ([sfu] workers = "auto" would put
        # the patient's media in a worker, where it would not be)
        async with running_server(Path(tmp) / "data", **{"sfu.workers": 1, "media.realtime_priority": realtime,
                                                         "media.congestion_control": congestion_control}) as server:
            demo = await server.demo()
            print(json.dumps({"doctor": demo["practitioner_link"], "patient": demo["patient_link"]}), flush=True)
            while line := await reader.readline():
                cmd = json.loads(line)
                if cmd["do"] == "set":
                    relays.set(_impairment(cmd["up"]), _impairment(cmd["down"]))
                elif cmd["do"] == "outage":
                    relays.outage(float(cmd["seconds"]))
                elif cmd["do"] == "offered":
                    down = relays.counters()["down"].offered_bytes if relays.relays else 0
                    print(json.dumps({"offered": down}), flush=True)
                elif cmd["do"] == "late":
                    print(json.dumps({"late": lag.late_wakes(float(cmd["since"]))}), flush=True)
    lag.stop()
    if diagnosis is not None:
        diagnosis.cancel()
    relays.close()


async def _diagnose(relays: RelayedOffers, seen: dict[str, Any]) -> None:
    """Every 0.5 s: the patient's downlink as the SFU sees it (estimate and state, what the doctor's camera is
    asked) and as the relay carries it (packets delivered and dropped by the full queue)."""
    started, before = time.monotonic(), None
    while True:
        await asyncio.sleep(0.5)
        doctor, patient = seen.get("practitioner"), seen.get("patient")
        if doctor is None or patient is None or not relays.relays:
            continue
        down = relays.counters()["down"]
        now = (down.delivered, down.overflow)
        tc = patient.transport_cc() or {}
        camera = doctor.producers.get("camera")
        uplink = patient.producers.get("camera")
        if before is not None:
            repair = (f" patient-camera rtt={patient.rtt()} repaired_after={uplink.stream.repaired_after} "
                      f"slowest={uplink.stream.slowest_repair:.3f} unrepaired={uplink.stream.unrepaired} "
                      f"keyframe_requests={uplink.keyframe_requests} playout_floor={uplink.playout_floor:.3f}") if uplink else ""
            down_camera = patient.consumers.get("camera")
            if down_camera is not None:  # the doctor's camera towards the patient: its repairs on the downlink
                repair += (f" downlink nacks={down_camera.nacks_received} "
                           f"feedback_repairs={down_camera.feedback_repairs} stale={down_camera.stale_nacks}")
            print(f"DIAG t={time.monotonic() - started:6.1f} est={tc.get('downlink_estimate')} "
                  f"state={tc.get('downlink_state')} asked={camera.sent_estimate if camera else None} "
                  f"delivered={now[0] - before[0]} overflow={now[1] - before[1]}{repair}", file=sys.stderr, flush=True)
        before = now


async def _page(pw: Any, tmp: Path, colour: str, cleanup: list[Callable[[], Any]]) -> Any:
    y4m = tmp / f"{colour}.y4m"
    if not y4m.exists():
        write_y4m(y4m, colour, width=640, height=480, fps=30, frames=60, busy=True)
    browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                       args=[*FLAGS, f"--use-file-for-fake-video-capture={y4m}"])
    cleanup.append(browser.close)
    return await (await browser.new_context()).new_page()


# the CPU each arm costs the box over its window, by process: Chromium rewrites its processes' command lines,
# so a process is known by the switches it was started with
CPU_CLASSES = (("gpu", "--type=gpu-process"), ("renderer", "--type=renderer"), ("audio/network", "--type=utility"),
               ("server", "network_quality.py --serve"), ("browser", "chrom"))


def cpu_ticks() -> dict[str, int]:
    """utime + stime of every process on the box, summed by CPU_CLASSES (clock ticks)."""
    ticks: dict[str, int] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        used = int(fields[11]) + int(fields[12])
        name = next((n for n, mark in CPU_CLASSES if mark in cmdline), None)
        if name is not None:
            ticks[name] = ticks.get(name, 0) + used
    return ticks


def cpu_percent(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, float]:
    """% of one core each class used between two cpu_ticks(); a process started meanwhile counts whole."""
    hz = os.sysconf("SC_CLK_TCK")
    return {name: round(100 * (after.get(name, 0) - before.get(name, 0)) / hz / seconds, 1)
            for name, _ in CPU_CLASSES if name in after}


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no picture on both sides within {timeout} s")


async def measure(mode: str, scenario: Scenario, args: argparse.Namespace, pw: Any, tmp: Path) -> dict[str, Any]:
    cleanup: list[Callable[[], Any]] = []
    try:
        make = (functools.partial(direct_call, layout=args.direct_layout) if mode == "direct" else
                functools.partial(sfu_call, congestion_control=args.congestion_control, diag=args.diag,
                                  realtime=args.server_realtime))
        doctor, patient, outage, impair, offered, late = await make(pw, tmp, scenario, args.seed, cleanup)
        sides = [doctor, patient]

        async def both_decode() -> bool:
            return all([(await s.stats())["frames"] > 10 for s in sides])

        await _until(both_decode, 30)
        await asyncio.sleep(args.warmup)
        for side in sides:
            await side.page.evaluate(WATCH, [side.video, FREEZE_MS, STALL_MS])
        before = [await s.stats() for s in sides]
        impair(scenario.up, scenario.down)
        # each side's sending, sampled: the rate it settled on, and when it went under a cap
        samples: dict[str, list[tuple[float, float, float, float]]] = {"doctor": [], "patient": []}
        # and what was put on the patient's downlink: by the doctor's browser direct, by the SFU through it
        link: list[tuple[float, float]] = []
        # each side's concealed audio samples so far: when in the window a browser concealed
        concealed: dict[str, list[tuple[float, int]]] = {"doctor": [], "patient": []}
        started, cpu_before = time.monotonic(), cpu_ticks()
        outage_done = not scenario.outage
        while (elapsed := time.monotonic() - started) < args.duration:
            if not outage_done and elapsed >= args.duration / 3:
                for side in sides:
                    await side.page.evaluate("(ms) => { window.__watch.after = performance.now() + ms; }",
                                             scenario.outage * 1000)
                outage(scenario.outage)
                outage_done = True
            for side in sides:
                st = await side.stats()
                samples[side.name].append((elapsed, st["sentBytes"], st["headerBytes"], st["resentBytes"]))
                concealed[side.name].append((elapsed, st["concealed"]))
            link.append((elapsed, await offered()))
            await asyncio.sleep(0.5)
        cpu = cpu_percent(cpu_before, cpu_ticks(), time.monotonic() - started)
        after = [await s.stats() for s in sides]
        wakes = [(round(t - started, 2), round(1000 * lateness)) for t, lateness in await late(started)]
        out: dict[str, Any] = {"cpu_pct": cpu, "relay_loop": {
            # the loop of the relay (and the SFU): wakes later than 10 and 50 ms, and each (s into the window, ms)
            "late_10ms": len(wakes), "late_50ms": sum(1 for _, ms in wakes if ms > 50), "wakes": wakes}}
        for side, other, b, a in zip(sides, reversed(sides), before, after):
            watch = await side.page.evaluate("() => window.__watch")
            # figures of what `side` received, and of the sender it received from
            out[side.name] = _figures(b, a, watch, samples[other.name], scenario)
            # when it concealed (JSON only): (s into the window, ms of audio concealed in the half second before)
            out[side.name]["concealed_at"] = [(round(t1, 1), round((c1 - c0) / 48)) for (_, c0), (t1, c1)
                                              in zip(concealed[side.name], concealed[side.name][1:]) if c1 > c0]
            # what the other side's sender believed at the end: its estimate, its encoder's target, the limit
            theirs = after[sides.index(other)]
            if theirs["available"] is not None:
                out[side.name]["sender_estimate_kbps"] = round(theirs["available"] / 1000, 1)
            if theirs["target"] is not None:
                out[side.name]["sender_target_kbps"] = round(theirs["target"] / 1000, 1)
            out[side.name]["sender_limited_by"] = theirs["limitation"]
        if scenario.cap:
            # the capped link's own sender: the doctor's browser direct, the SFU through it (whose sending
            # the patient's leg decides, not the doctor's browser's total)
            last = [x for x in link if x[0] >= link[-1][0] * 2 / 3]
            if len(last) > 1 and last[-1][0] > last[0][0]:
                out["patient"]["link_kbps"] = round(8 * (last[-1][1] - last[0][1]) / (last[-1][0] - last[0][0]) / 1000, 1)
            out["patient"]["link_settle_under_cap_s"] = _settle_time(link, scenario.cap)
        return out
    finally:
        for step in reversed(cleanup):
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:  # one failed close must not stop the others
                print(f"  cleanup: {exc!r}", file=sys.stderr)


def _figures(b: dict[str, Any], a: dict[str, Any], watch: dict[str, Any], sent: list[tuple[float, float, float, float]],
             scenario: Scenario) -> dict[str, Any]:
    """What the receiving side saw over the window (b: before, a: after)."""
    seconds = (a["at"] - b["at"]) / 1000
    gaps = list(watch["gaps"]) + ([a["frozenNow"]] if a["frozenNow"] else [])
    samples_in = a["samples"] - b["samples"]
    jb = a["jbCount"] - b["jbCount"]
    fig: dict[str, Any] = {
        "decoded_fps": round((a["frames"] - b["frames"]) / seconds, 1),
        "freezes_per_min": round(len(gaps) * 60 / seconds, 2),
        "freeze_s": round(sum(gaps) / 1000, 2),
        "stalls_per_min": round(len(watch["stalls"]) * 60 / seconds, 2),
        "concealed_pct": round(100 * (a["concealed"] - b["concealed"]) / samples_in, 2) if samples_in else None,
        "rtt_ms": round(1000 * a["rtt"], 1) if a["rtt"] is not None else None,
        "jitter_buffer_ms": round(1000 * (a["jbDelay"] - b["jbDelay"]) / jb, 1) if jb else None,
        # the voice's: how long its jitter buffer held the audio (a lean one conceals at the first late packet),
        # and the RTP interarrival jitter the browser measured at the end
        "audio_jitter_buffer_ms": (round(1000 * (a["audioJbDelay"] - b["audioJbDelay"]) / audio_jb, 1)
                                   if (audio_jb := a.get("audioJbCount", 0) - b.get("audioJbCount", 0)) else None),
        "audio_jitter_ms": round(1000 * a["audioJitter"], 1) if a.get("audioJitter") is not None else None,
        "lost_after_repair": a["lost"] - b["lost"],
        "keyframes_requested": a["pli"] - b["pli"],
        "nacks": a["nacks"] - b["nacks"],
        # when each freeze began, s into the window (JSON only: where in a scenario the freezes fall)
        "freeze_starts_s": [round(t / 1000, 1) for t in watch["starts"]],
        # and each hitch: when it began (s into the window) and how long it lasted (ms)
        "stalls": [(round(t / 1000, 2), round(length)) for t, length in watch["stalls"]],
    }
    if scenario.outage:
        back = watch.get("firstAfter")
        fig["back_after_outage_s"] = round((back - watch["after"]) / 1000, 2) if back is not None else None
    last = [x for x in sent if x[0] >= sent[-1][0] * 2 / 3]
    if len(last) > 1 and last[-1][0] > last[0][0]:
        span = last[-1][0] - last[0][0]
        fig["sender_kbps"] = round(8 * (last[-1][1] - last[0][1]) / span / 1000, 1)
        # of which RTP headers and padding (a browser's bandwidth probes are padding), and retransmissions
        fig["sender_header_kbps"] = round(8 * (last[-1][2] - last[0][2]) / span / 1000, 1)
        fig["sender_resent_kbps"] = round(8 * (last[-1][3] - last[0][3]) / span / 1000, 1)
    if scenario.cap:
        settled = fig["settle_under_cap_s"] = _settle_time([(t, b) for t, b, *_ in sent], scenario.cap)
        # freezes that began once the sender was under the cap for good, per minute of what was left of the
        # window (the step itself, 1.5 Mbit/s meeting the cap, freezes direct calls too)
        if settled is not None and seconds > settled + 10:
            later = [t for t in watch["starts"] if t / 1000 >= settled]
            later += [1] if a["frozenNow"] else []  # frozen at the end of the window
            fig["freezes_per_min_settled"] = round(len(later) * 60 / (seconds - settled), 2)
    return fig


def _settle_time(samples: list[tuple[float, float]], cap: int) -> float | None:
    """Seconds until the sender's 1-s rate stayed under `cap` to the end (None: never)."""
    rates = [(t1, 8 * (b1 - b0) / (t1 - t0)) for (t0, b0), (t1, b1) in zip(samples, samples[2:]) if t1 > t0]
    settled = None
    for t, rate in rates:
        if rate >= cap:
            settled = None
        elif settled is None:
            settled = t
    return round(settled, 1) if settled is not None else None


FIELDS = ["decoded_fps", "freezes_per_min", "freeze_s", "stalls_per_min", "concealed_pct", "audio_jitter_buffer_ms",
          "audio_jitter_ms", "rtt_ms", "jitter_buffer_ms",
          "lost_after_repair", "keyframes_requested", "nacks", "sender_kbps", "sender_header_kbps",
          "sender_resent_kbps", "sender_estimate_kbps", "sender_target_kbps",
          "sender_limited_by", "back_after_outage_s", "settle_under_cap_s", "freezes_per_min_settled",
          "link_kbps", "link_settle_under_cap_s"]


def _ratio(sfu: Any, direct: Any) -> str:
    if sfu is None or direct is None or isinstance(sfu, str) or isinstance(direct, str):
        return "—"
    if direct == 0:
        return "=" if sfu == 0 else "∞"
    return f"{sfu / direct:.2f}"


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, modes in results.items():
        lines.append(f"\n## {name}  (receiving side: doctor gets the patient's media, patient gets the doctor's)")
        lines.append("| figure | doctor direct | doctor SFU | SFU/direct | patient direct | patient SFU | SFU/direct |")
        lines.append("|---|---|---|---|---|---|---|")
        for field in FIELDS:
            cells = []
            for side in ("doctor", "patient"):
                d = modes.get("direct", {}).get(side, {}).get(field)
                s = modes.get("sfu", {}).get(side, {}).get(field)
                cells += [str(d) if d is not None else "—", str(s) if s is not None else "—", _ratio(s, d)]
            if any(c != "—" for c in cells):
                lines.append(f"| {field} | " + " | ".join(cells) + " |")
        for mode in ("direct", "sfu"):  # what the arm cost the box's cores: both browsers, and the server
            cpu = modes.get(mode, {}).get("cpu_pct")
            if cpu:
                lines.append(f"\n{mode}: CPU over the window, % of one core: "
                             + ", ".join(f"{name} {pct}" for name, pct in cpu.items()))
            loop = modes.get(mode, {}).get("relay_loop")
            if loop:
                lines.append(f"{mode}: the relay's loop{' (and the SFU)' if mode == 'sfu' else ''} woke > 10 ms late "
                             f"{loop['late_10ms']} times, > 50 ms {loop['late_50ms']}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    from playwright.async_api import async_playwright

    wanted = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="netq-") as tmp:
        async with async_playwright() as pw:
            for scenario in wanted:
                results[scenario.name] = {}
                for mode in args.modes:
                    print(f"{scenario.name} / {mode} ...", file=sys.stderr, flush=True)
                    results[scenario.name][mode] = await measure(mode, scenario, args, pw, Path(tmp))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, help="measured window per scenario, s (default 45, quick 15)")
    ap.add_argument("--warmup", type=float, help="s of clean call before the window (default 8, quick 5)")
    ap.add_argument("--quick", action="store_true", help="15 s windows after 5 s of warm-up")
    ap.add_argument("--scenarios", nargs="*", choices=[s.name for s in SCENARIOS])
    ap.add_argument("--modes", nargs="*", default=["direct", "sfu"], choices=["direct", "sfu"])
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--server-realtime", type=int, default=0, metavar="PRIORITY",
                    help="the server's [media] realtime_priority (sfu mode; 0: normal scheduling)")
    ap.add_argument("--congestion-control", default="transport-cc", choices=["transport-cc", "remb"],
                    help="the server's [media] congestion_control (sfu mode)")
    ap.add_argument("--direct-layout", default="stage", choices=["stage", "bare"],
                    help="the direct page: laid out as the product's call (default), or the remote video alone")
    ap.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--diag", action="store_true",
                    help="the server prints its view of the patient's downlink every 0.5 s to stderr (sfu mode)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server's own process
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.seed, args.congestion_control, args.diag, args.server_realtime))
        return 0
    args.duration = args.duration or (15.0 if args.quick else 45.0)
    args.warmup = args.warmup if args.warmup is not None else (5.0 if args.quick else 8.0)
    if os.geteuid() != 0:
        print("warning: run as root inside `unshare --net` (see the docstring)", file=sys.stderr)
    load = os.getloadavg()
    started = time.time()
    results = asyncio.run(run(args))
    print(f"# network_quality: {args.duration:.0f} s windows, {args.warmup:.0f} s warm-up, seed {args.seed}, "
          f"direct page layout {args.direct_layout}, "
          f"SFU congestion control {args.congestion_control}, server realtime priority {args.server_realtime}; "
          f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{time.time() - started:.0f} s in all")
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
