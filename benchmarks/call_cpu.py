"""Server CPU and memory of one real 1:1 consultation between two Chromium browsers.

What it does, in one run:

1. writes a temporary config.toml (HTTP on 127.0.0.1 on a free port, data in a
   temporary folder, ``ice.host_addresses = ["127.0.0.1"]``), gets a demo
   consultation's links from ``teleconsult demo --json``, then starts
   ``teleconsult serve`` as a subprocess pinned to core 0 (``taskset -c 0``)
   and waits for ``/healthz``;
2. pins itself (hence Playwright and both Chromium browsers, which inherit the
   affinity) to core 1, and launches two headless Chromium browsers, each with its
   own y4m fake camera (red for the practitioner, blue for the patient): solid colour
   by default (tiny VP8 frames, one RTP packet each), or ``--pattern noise`` (random
   luma: Chromium sends at its bitrate cap, several packets per frame);
3. BASELINE: both pages sit in the waiting room (no call) for min(duration, 15) s;
   the server's CPU (utime+stime from /proc/PID/stat) and RSS are measured;
4. CALL: the practitioner clicks ``join``, the patient ``ready``; the time from the
   ``ready`` click to the first decoded remote frame is measured on each side;
   after ``--warmup`` s, over ``--duration`` s: server CPU, server RSS, and from
   each browser's ``getStats()``: frames decoded, audio+video packets received
   (their sum over both browsers = packets the SFU forwarded), packets lost,
   bytes sent and received;
5. prints a table (and writes JSON with ``--out``), with the call/baseline CPU ratio
   and, as a reference NOT measured here, Janus's 49-76 us of CPU per forwarded packet
   (/work/shared/notes/sfu-benchmarks.md).

"Forwarded packets" are the RTP packets the two browsers received (so the SFU's
output); the server CPU also pays for receiving the same number from the publishers,
for RTCP and for ICE consent checks, as in the Janus figure.  Both browsers share one
core: at 640x480 30 fps they keep it near 100% busy, so the browsers may send a little
under 30 fps; the server's core is separate and its figures are not affected.

Run it as root inside a network namespace that has only ``lo``, so that every
packet stays on loopback (from the repository root)::

    unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/call_cpu.py --duration 60'

Outside such a namespace, or not as root, it still runs but prints a warning.
Needs Debian's chromium at /usr/bin/chromium (or $TELECONSULT_CHROMIUM) and 2+ cores
for the pinning (with one core everything shares it and the figures mean less).
"""

from __future__ import annotations

import argparse
import contextlib
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers.chromium import CHROMIUM, FLAGS  # type: ignore[import-not-found]
from procs import stop, tail, wait_http  # type: ignore[import-not-found]
from helpers.y4m import YUV, write_y4m  # type: ignore[import-not-found]



# reference only, NOT measured by this script: /work/shared/notes/sfu-benchmarks.md,
# Janus 1.1.2 videoroom, 1:1 rooms, pre-encoded VP8 640x480 30 fps (~1 Mbps) + Opus
JANUS_US_PER_PKT = (49, 76)

CLK_TCK = os.sysconf("SC_CLK_TCK")

# JS: one flat snapshot of the page's RTCPeerConnection statistics
STATS_JS = """async () => {
  const pc = window.__teleconsult?.call?.pc;
  if (!pc) return null;
  const z = () => ({packetsReceived: 0, packetsLost: 0, bytesReceived: 0, framesDecoded: 0, framesReceived: 0,
                    packetsSent: 0, bytesSent: 0, framesEncoded: 0, nackCount: 0, pliCount: 0});
  const out = {t: performance.now(), audio: z(), video: z(), frameWidth: 0, frameHeight: 0,
               sentWidth: 0, sentHeight: 0, qualityLimitationReason: '', pair: null};
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && out[s.kind]) {
      const o = out[s.kind];
      o.packetsReceived += s.packetsReceived || 0;
      o.packetsLost += s.packetsLost || 0;
      o.bytesReceived += s.bytesReceived || 0;
      o.framesDecoded += s.framesDecoded || 0;
      o.framesReceived += s.framesReceived || 0;
      o.nackCount += s.nackCount || 0;
      o.pliCount += s.pliCount || 0;
      if (s.kind === 'video') { out.frameWidth = s.frameWidth || 0; out.frameHeight = s.frameHeight || 0; }
    }
    if (s.type === 'outbound-rtp' && out[s.kind]) {
      const o = out[s.kind];
      o.packetsSent += s.packetsSent || 0;
      o.bytesSent += s.bytesSent || 0;
      o.framesEncoded += s.framesEncoded || 0;
      if (s.kind === 'video') {
        out.sentWidth = s.frameWidth || 0; out.sentHeight = s.frameHeight || 0;
        out.qualityLimitationReason = s.qualityLimitationReason || '';
      }
    }
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') out.pair = s.currentRoundTripTime ?? null;
  });
  return out;
}"""

# JS: the remote <video> shows a picture and the peer connection decoded a frame
FIRST_FRAME_JS = """async () => {
  const v = document.querySelector('[data-testid="remote-video"]');
  if (!v || !v.videoWidth) return false;
  const pc = window.__teleconsult?.call?.pc;
  if (!pc) return false;
  let n = 0;
  (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.framesDecoded || 0; });
  return n > 0;
}"""


# JS: "in call" while the call view shows the remote video and call-status has no message
IN_CALL_JS = """() => {
  const v = document.querySelector('[data-testid="remote-video"]');
  const st = document.querySelector('[data-testid="call-status"]');
  if (!v || !v.checkVisibility() || !window.__teleconsult?.call) return 'not in call';
  return st && !st.hidden && st.textContent ? `in call: ${st.textContent}` : 'in call';
}"""


# ---------------------------------------------------------------- /proc readings

def proc_cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process, in seconds (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after "pid (comm)": state is fields[0]; utime, stime are stat fields 14, 15
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_rss_mb(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def cpu_jiffies() -> dict[str, tuple[int, int]]:
    """Per-core (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                v = [int(x) for x in vals]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                out[name] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


@dataclass
class Window:
    """Server CPU and per-core load between start() and stop()."""
    pid: int
    t0: float = 0.0
    cpu0: tuple[float, float] = (0.0, 0.0)
    cores0: dict[str, tuple[int, int]] = field(default_factory=dict)
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    server_user_s: float = 0.0
    server_sys_s: float = 0.0
    core_busy: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self.cores0 = cpu_jiffies()
        self.cpu0 = proc_cpu_times(self.pid)
        self.t0 = time.monotonic()

    def stop(self) -> None:
        cpu1 = proc_cpu_times(self.pid)
        self.seconds = time.monotonic() - self.t0
        cores1 = cpu_jiffies()
        self.server_user_s = cpu1[0] - self.cpu0[0]
        self.server_sys_s = cpu1[1] - self.cpu0[1]
        self.server_cpu_s = self.server_user_s + self.server_sys_s
        for name, (busy, total) in cores1.items():
            b0, t0 = self.cores0.get(name, (busy, total))
            self.core_busy[name] = 100.0 * (busy - b0) / max(1, total - t0)

    @property
    def server_cpu_pct(self) -> float:
        return 100.0 * self.server_cpu_s / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------- server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def teleconsult_cmd() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "teleconsult"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "signaling.cli"]


def write_config(tmp: Path, port: int, key_file: Path | None = None) -> Path:
    cfg = tmp / "config.toml"
    cfg.write_text(
        "[http]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f'public_url = "http://127.0.0.1:{port}"\n'
        "[storage]\n"
        f'data_dir = "{tmp / "data"}"\n'
        + (f'key_file = "{key_file}"\n' if key_file else "")
        + "[operator]\n"
        "port = 0\n"  # any free port: never collides with another server on the machine
        "[ice]\n"
        'host_addresses = ["127.0.0.1"]\n'
        "[sfu]\n"
        "workers = 1\n"  # the server's CPU is one process's (pinned to one core)
    )
    return cfg


def start_demo_server(tmp: Path, log: Path, log_level: str = "WARNING",
                      key_file: Path | None = None) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    """`teleconsult demo --json` then `serve` on a free port under `tmp`: (process, base URL, demo JSON).

    `key_file`: seal stored files with it.  The caller stops the process (procs.stop) when done.
    """
    port = free_port()
    cfg = write_config(tmp, port, key_file)
    demo = subprocess.run([*teleconsult_cmd(), "--log-level", "WARNING", "demo", "--json", "--config", str(cfg)],
                          check=True, capture_output=True, text=True, timeout=60, cwd=ROOT)
    with log.open("wb") as logf:
        proc = subprocess.Popen([*teleconsult_cmd(), "--log-level", log_level, "serve", "--config", str(cfg)],
                                stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc, log=log)
    except BaseException:
        stop(proc)
        raise
    return proc, base, json.loads(demo.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def demo_server(prefix: str) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, Any], Path]]:
    """start_demo_server in a scratch folder; the server is stopped and the folder removed on leaving."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, base, demo = start_demo_server(tmp, tmp / "server.log")
        yield proc, base, demo, tmp
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- browsers

def write_noise_y4m(path: Path, colour: str, width: int, height: int, fps: int, frames: int) -> Path:
    """A y4m whose luma is random in every frame (a worst case for the encoder: high bitrate,
    many packets per frame); chroma stays the side's colour."""
    _, u, v = YUV[colour]
    chroma = bytes([u]) * (width * height // 4) + bytes([v]) * (width * height // 4)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + os.urandom(width * height) + chroma)
    return path


def console_printer(side: str) -> Callable[[Any], None]:
    def show(message: Any) -> None:
        if message.type in ("error", "warning"):
            print(f"  [{side} console] {message.type}: {message.text}")
    return show


async def poll_first_frame(page: Any, since: float, timeout: float = 30.0) -> float:
    """ms from `since` to the first remote frame shown and decoded (polled every 20 ms)."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        if await page.evaluate(FIRST_FRAME_JS):
            return (time.monotonic() - since) * 1000
        await asyncio.sleep(0.02)
    raise TimeoutError(f"no remote frame after {timeout} s")


async def wait_js(page: Any, js: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await page.evaluate(js):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"condition not met in {timeout} s: {js}")


def delta(a: dict[str, Any], b: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Per-side figures between two STATS_JS snapshots."""
    d = {kind: {k: b[kind][k] - a[kind][k] for k in a[kind]} for kind in ("audio", "video")}
    return {
        "packets_received": d["audio"]["packetsReceived"] + d["video"]["packetsReceived"],
        "packets_received_audio": d["audio"]["packetsReceived"],
        "packets_received_video": d["video"]["packetsReceived"],
        "packets_lost": d["audio"]["packetsLost"] + d["video"]["packetsLost"],
        "packets_sent": d["audio"]["packetsSent"] + d["video"]["packetsSent"],
        "frames_decoded": d["video"]["framesDecoded"],
        # frames the SFU forwarded to this side: every Opus packet is a frame
        "frames_received": d["video"]["framesReceived"] + d["audio"]["packetsReceived"],
        "frames_decoded_per_s": d["video"]["framesDecoded"] / seconds,
        "frames_encoded_per_s": d["video"]["framesEncoded"] / seconds,
        "out_mbps": 8 * (d["audio"]["bytesSent"] + d["video"]["bytesSent"]) / seconds / 1e6,
        "in_mbps": 8 * (d["audio"]["bytesReceived"] + d["video"]["bytesReceived"]) / seconds / 1e6,
        "out_video_mbps": 8 * d["video"]["bytesSent"] / seconds / 1e6,
        "nack": d["video"]["nackCount"],
        "pli": d["video"]["pliCount"],
        "received_size": f'{b["frameWidth"]}x{b["frameHeight"]}',
        "sent_size": f'{b["sentWidth"]}x{b["sentHeight"]}',
        "quality_limitation": b["qualityLimitationReason"],
        "rtt_ms": None if b["pair"] is None else round(1000 * b["pair"], 2),
    }


async def run(args: argparse.Namespace, links: dict[str, Any], server_pid: int, tmp: Path) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    make = write_y4m if args.pattern == "solid" else write_noise_y4m
    y4m = {c: make(tmp / f"{c}.y4m", c, args.width, args.height, args.fps, args.frames)
           for c in ("red", "blue")}
    result: dict[str, Any] = {}
    browsers: list[Any] = []
    async with async_playwright() as pw:
        try:
            pages = {}
            for side, colour in (("practitioner", "red"), ("patient", "blue")):
                browser = await pw.chromium.launch(
                    executable_path=CHROMIUM, headless=True,
                    args=[*FLAGS, f"--use-file-for-fake-video-capture={y4m[colour]}"],
                )
                browsers.append(browser)
                page = await (await browser.new_context(viewport={"width": 1024, "height": 700})).new_page()
                page.on("console", console_printer(side))
                pages[side] = page
            doctor, patient = pages["practitioner"], pages["patient"]
            await doctor.goto(links["practitioner_link"])
            await patient.goto(links["patient_link"])
            await patient.get_by_test_id("consent-accept").click()  # the teleconsultation notice (issue 19)
            for page in (doctor, patient):
                await page.get_by_test_id("join").wait_for(state="visible", timeout=20000)
                await wait_js(page, "() => document.querySelector('[data-testid=local-preview]')?.videoWidth > 0")

            # ---- BASELINE: both in the waiting room, no call
            base_s = min(args.duration, 15.0)
            print(f"baseline: both pages in the waiting room for {base_s:.0f} s ...", flush=True)
            await asyncio.sleep(1.0)
            w = Window(server_pid)
            w.start()
            await asyncio.sleep(base_s)
            w.stop()
            result["baseline"] = {
                "seconds": round(w.seconds, 2), "server_cpu_s": round(w.server_cpu_s, 3),
                "server_user_s": round(w.server_user_s, 3), "server_sys_s": round(w.server_sys_s, 3),
                "server_cpu_pct": round(w.server_cpu_pct, 2), **{f"server_{k}_mb": round(v, 1) for k, v in proc_rss_mb(server_pid).items()},
                "core_busy_pct": {k: round(v, 1) for k, v in w.core_busy.items()},
            }

            # ---- CALL
            print("call: practitioner joins, patient is ready ...", flush=True)
            await doctor.get_by_test_id("join").click()
            await patient.get_by_test_id("ready").wait_for(state="visible", timeout=20000)
            await patient.get_by_test_id("ready").click()
            ready_at = time.monotonic()
            ff_doctor, ff_patient = await asyncio.gather(poll_first_frame(doctor, ready_at),
                                                         poll_first_frame(patient, ready_at))
            result["first_frame_ms"] = {"practitioner": round(ff_doctor), "patient": round(ff_patient)}
            print(f"first remote frame after 'ready': practitioner {ff_doctor:.0f} ms, patient {ff_patient:.0f} ms", flush=True)

            print(f"warm-up {args.warmup:.0f} s, then measuring {args.duration:.0f} s ...", flush=True)
            await asyncio.sleep(args.warmup)
            w = Window(server_pid)
            s0 = await asyncio.gather(doctor.evaluate(STATS_JS), patient.evaluate(STATS_JS))
            w.start()
            await asyncio.sleep(args.duration)
            w.stop()
            s1 = await asyncio.gather(doctor.evaluate(STATS_JS), patient.evaluate(STATS_JS))
            if None in s0 or None in s1:
                raise RuntimeError("a page has no peer connection at the end of the window")
            sides = {side: delta(a, b, w.seconds) for side, a, b in zip(("practitioner", "patient"), s0, s1)}
            fwd = sum(s["packets_received"] for s in sides.values())
            fwd_frames = sum(s["frames_received"] for s in sides.values())
            result["call"] = {
                "seconds": round(w.seconds, 2), "server_cpu_s": round(w.server_cpu_s, 3),
                "server_user_s": round(w.server_user_s, 3), "server_sys_s": round(w.server_sys_s, 3),
                "server_cpu_pct": round(w.server_cpu_pct, 2),
                **{f"server_{k}_mb": round(v, 1) for k, v in proc_rss_mb(server_pid).items()},
                "forwarded_packets": fwd,
                "forwarded_pkt_per_s": round(fwd / w.seconds, 1),
                "us_cpu_per_forwarded_packet": round(1e6 * w.server_cpu_s / fwd, 1) if fwd else None,
                "forwarded_frames_per_s": round(fwd_frames / w.seconds, 1),
                "us_cpu_per_forwarded_frame": round(1e6 * w.server_cpu_s / fwd_frames, 1) if fwd_frames else None,
                "packets_lost": sum(s["packets_lost"] for s in sides.values()),
                "forwarded_mbps": round(sum(s["in_mbps"] for s in sides.values()), 3),
                "core_busy_pct": {k: round(v, 1) for k, v in w.core_busy.items()},
                "sides": sides,
            }
            # still in the call at the end? (the call view shows, with no problem in call-status)
            for side, page in pages.items():
                result["call"]["sides"][side]["in_call_at_end"] = await page.evaluate(IN_CALL_JS)
        finally:
            for b in browsers:
                try:
                    await asyncio.wait_for(b.close(), 15)
                except Exception as exc:  # noqa: BLE001 - keep closing the others
                    print(f"warning: closing a browser failed: {exc!r}", file=sys.stderr)
    return result


# ---------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        chromium = subprocess.run([CHROMIUM, "--version"], check=False, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        chromium = "?"
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(), "chromium": chromium}


def environment_warnings() -> list[str]:
    warnings = []
    if os.geteuid() != 0:
        warnings.append("not root: run inside `unshare --net` as root (see the docstring)")
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        warnings.append(f"not in a loopback-only network namespace (interfaces: {', '.join(names)}); "
                        "run: unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/call_cpu.py'")
    if (os.cpu_count() or 1) < 2:
        warnings.append("fewer than 2 cores: server and browsers share one core, no pinning")
    return warnings


def _ms_pair(w: dict[str, Any]) -> str:
    return f"{1000 * w['server_user_s']:.0f} / {1000 * w['server_sys_s']:.0f}"


def report(r: dict[str, Any]) -> str:
    b, c = r["baseline"], r["call"]
    p, q = c["sides"]["practitioner"], c["sides"]["patient"]
    a = r["args"]
    lines: list[str] = []
    add = lines.append
    add("")
    add(f"Teleconsult call benchmark  {r['date']}  {r['machine']['cpus']} vCPU {r['machine']['cpu_model']}")
    add(f"  {r['machine']['chromium']}; capture {a['width']}x{a['height']} @ {a['fps']} fps, {a['pattern']} y4m; "
        f"server pinned to {r['server_cpus']}, browsers to {r['browser_cpus']}")
    add("")
    add(f"{'BASELINE (both in waiting room, no call)':<48}{b['seconds']:>10.1f} s window")
    add(f"  {'server CPU time in the window (ms)':<46}{1000 * b['server_cpu_s']:>10.0f}")
    add(f"  {'  of which user / kernel (ms)':<46}{_ms_pair(b):>10}")
    add(f"  {'server CPU, % of one core':<46}{b['server_cpu_pct']:>10.2f}")
    add(f"  {'server RSS (MB)':<46}{b.get('server_VmRSS_mb', 0):>10.1f}")
    add("")
    add(f"{'CALL (1:1, both directions)':<48}{c['seconds']:>10.1f} s window after {a['warmup']:.0f} s warm-up")
    add(f"  {'ready -> first remote frame, practitioner (ms)':<46}{r['first_frame_ms']['practitioner']:>10}")
    add(f"  {'ready -> first remote frame, patient (ms)':<46}{r['first_frame_ms']['patient']:>10}")
    add(f"  {'server CPU time in the window (ms)':<46}{1000 * c['server_cpu_s']:>10.0f}")
    add(f"  {'  of which user / kernel (ms)':<46}{_ms_pair(c):>10}")
    add(f"  {'server CPU, % of one core':<46}{c['server_cpu_pct']:>10.2f}")
    add(f"  {'server RSS (MB)':<46}{c.get('server_VmRSS_mb', 0):>10.1f}")
    add(f"  {'server RSS growth over baseline (MB)':<46}{c.get('server_VmRSS_mb', 0) - b.get('server_VmRSS_mb', 0):>10.1f}")
    add(f"  {'forwarded packets/s (sum of received, both)':<46}{c['forwarded_pkt_per_s']:>10.1f}")
    us = c["us_cpu_per_forwarded_packet"]
    add(f"  {'server CPU per forwarded packet (us)':<46}{us if us is not None else float('nan'):>10.1f}")
    uf = c["us_cpu_per_forwarded_frame"]
    add(f"  {'forwarded frames/s (video frames + Opus pkts)':<46}{c['forwarded_frames_per_s']:>10.1f}")
    add(f"  {'server CPU per forwarded frame (us)':<46}{uf if uf is not None else float('nan'):>10.1f}")
    add(f"  {'forwarded Mbit/s (sum of received, both)':<46}{c['forwarded_mbps']:>10.3f}")
    add(f"  {'packets lost (both sides)':<46}{c['packets_lost']:>10}")
    ratio = r["cpu_ratio_call_over_baseline"]
    if ratio is None:
        # /proc/PID/stat counts in clock ticks: the idle server used less than one tick
        bound = c["server_cpu_pct"] / (100.0 / CLK_TCK / b["seconds"])
        add(f"  {'call CPU / baseline CPU':<46}{'> ' + format(bound, '.0f') + 'x':>10}"
            f"  (baseline < 1 clock tick = {1000 / CLK_TCK:.0f} ms CPU in {b['seconds']:.0f} s)")
    else:
        add(f"  {'call CPU / baseline CPU':<46}{ratio:>10.1f}x")
    add("")
    add(f"  {'per side':<40}{'practitioner':>20}{'patient':>20}")
    secs = c["seconds"]
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("frames decoded /s", lambda s: f"{s['frames_decoded_per_s']:.1f}"),
        ("frames encoded /s", lambda s: f"{s['frames_encoded_per_s']:.1f}"),
        ("video size sent / received", lambda s: f"{s['sent_size']} / {s['received_size']}"),
        ("packets received /s (audio+video)", lambda s: f"{s['packets_received'] / secs:.1f}"),
        ("  of which audio / video", lambda s: f"{s['packets_received_audio'] / secs:.1f} / {s['packets_received_video'] / secs:.1f}"),
        ("packets lost", lambda s: str(s["packets_lost"])),
        ("sent Mbit/s (audio+video)", lambda s: f"{s['out_mbps']:.3f}"),
        ("received Mbit/s (audio+video)", lambda s: f"{s['in_mbps']:.3f}"),
        ("NACK / PLI sent", lambda s: f"{s['nack']} / {s['pli']}"),
        ("encoder quality limitation", lambda s: s["quality_limitation"] or "?"),
        ("RTT to server (ms)", lambda s: str(s["rtt_ms"])),
        ("state at end", lambda s: s["in_call_at_end"]),
    ]
    for label, cell in rows:
        add(f"  {label:<40}{cell(p):>20}{cell(q):>20}")
    add("")
    add("  core load during the call window (% busy): " + ", ".join(f"{k} {v:.0f}" for k, v in c["core_busy_pct"].items()))
    add("")
    add("Reference, NOT measured here: Janus 1.1.2 videoroom, 1:1 rooms, pre-encoded VP8 640x480 30 fps")
    add(f"  (~1 Mbit/s) + Opus: {JANUS_US_PER_PKT[0]}-{JANUS_US_PER_PKT[1]} us of CPU per forwarded packet "
        "(/work/shared/notes/sfu-benchmarks.md).")
    if r["warnings"]:
        add("")
        for w in r["warnings"]:
            add(f"WARNING: {w}")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="measured call window, s (default 60)")
    ap.add_argument("--warmup", type=float, default=5.0, help="s after the first frames before measuring (default 5)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--pattern", choices=("solid", "noise"), default="solid",
                    help="fake camera picture: solid colour (default; tiny frames, ~1 packet each) or "
                         "random luma (high bitrate, several packets per frame; heavy for the browsers)")
    ap.add_argument("--frames", type=int, default=60, help="frames in each y4m file; Chromium loops it (default 60)")
    ap.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    warnings = environment_warnings()
    for w in warnings:
        print(f"WARNING: {w}", file=sys.stderr)
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        print(f"Chromium not found at {CHROMIUM}", file=sys.stderr)
        return 2

    ncpu = len(os.sched_getaffinity(0))
    pin = ncpu >= 2 and shutil.which("taskset") is not None
    allowed = sorted(os.sched_getaffinity(0))
    server_cpus = {allowed[0]} if pin else set(allowed)
    browser_cpus = {allowed[1]} if pin else set(allowed)

    tmp = Path(tempfile.mkdtemp(prefix="teleconsult-bench-"))
    log = tmp / "server.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        port = free_port()
        cfg = write_config(tmp, port)
        demo = subprocess.run([*teleconsult_cmd(), "--log-level", "WARNING", "demo", "--json", "--config", str(cfg)],
                              check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
        if demo.returncode != 0:
            print(f"teleconsult demo failed ({demo.returncode}):\n{demo.stderr}", file=sys.stderr)
            return 1
        links = json.loads(demo.stdout.strip().splitlines()[-1])

        cmd = [*teleconsult_cmd(), "--log-level", "WARNING", "serve", "--config", str(cfg)]
        if pin:
            cmd = ["taskset", "-c", str(allowed[0]), *cmd]
        with log.open("wb") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log=log)
        print(f"server pid {proc.pid} on 127.0.0.1:{port}, CPUs {sorted(os.sched_getaffinity(proc.pid))}", flush=True)

        # this process, Playwright's driver and both Chromium browsers: the other core
        os.sched_setaffinity(0, browser_cpus)
        timeout = args.duration + args.warmup + 120
        result = asyncio.run(asyncio.wait_for(run(args, links, proc.pid, tmp), timeout))
        if proc.poll() is not None:
            raise RuntimeError(f"server died during the run:\n{tail(log)}")

        result.update({
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": machine(),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "server_cpus": sorted(server_cpus), "browser_cpus": sorted(browser_cpus),
            "warnings": warnings,
            "reference_not_measured": {"janus_videoroom_us_per_forwarded_packet": list(JANUS_US_PER_PKT),
                                       "source": "/work/shared/notes/sfu-benchmarks.md"},
        })
        base = result["baseline"]["server_cpu_pct"]
        result["cpu_ratio_call_over_baseline"] = round(result["call"]["server_cpu_pct"] / base, 2) if base > 0 else None
        print(report(result))
        server_errors = [l for l in log.read_text(errors="replace").splitlines() if "ERROR" in l or "Traceback" in l]
        if server_errors:
            print(f"\nserver log has {len(server_errors)} error line(s); first: {server_errors[0]}")
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            print(f"\nwrote {args.out}")
        return 0
    except TimeoutError as exc:
        print(f"benchmark timed out: {exc!r}\nserver log tail:\n{tail(log)}", file=sys.stderr)
        return 1
    except Exception:
        print(f"benchmark failed; server log tail:\n{tail(log)}", file=sys.stderr)
        raise
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
