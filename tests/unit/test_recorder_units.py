"""The recorder's parts without a network: layout, VP8 header, manifest, RTP clock, queue, compositor."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from helpers.synthetic import (
    AUDIO_TB,
    RGB,
    VIDEO_TB,
    opus_tone,
    vp8_frames,
    write_recording,
)

from recorder.compositor import compose
from recorder.errors import ManifestError
from recorder.layout import Rect, fit, tiles
from recorder.manifest import Event, Manifest, read_manifest, write_manifest
from recorder.writer import DiskWriter, TrackKey, _TrackFile, vp8_size

# --- layout

@pytest.mark.parametrize(("screen", "expected"), [
    (False, {"practitioner": Rect(0, 0, 640, 480), "patient": Rect(640, 0, 640, 480)}),
    (True, {"screen": Rect(0, 0, 960, 480), "practitioner": Rect(960, 0, 320, 240), "patient": Rect(960, 240, 320, 240)}),
])
def test_tiles_put_the_practitioner_left_and_a_screen_in_the_main_place(screen: bool, expected: dict[str, Rect]) -> None:
    assert tiles(1280, 480, screen) == expected


@pytest.mark.parametrize(("src", "box", "expected"), [
    ((640, 480), Rect(0, 0, 640, 480), Rect(0, 0, 640, 480)),
    ((640, 480), Rect(640, 0, 640, 240), Rect(800, 0, 320, 240)),  # letterboxed, centred
    ((1280, 720), Rect(0, 0, 960, 480), Rect(54, 0, 852, 480)),
    ((481, 359), Rect(0, 0, 320, 240), Rect(0, 0, 320, 238)),
])
def test_fit_keeps_the_shape_with_even_sizes_inside_the_box(src: tuple[int, int], box: Rect, expected: Rect) -> None:
    got = fit(*src, box)
    assert got == expected
    assert got.w % 2 == 0 and got.h % 2 == 0 and got.x % 2 == 0 and got.y % 2 == 0
    assert box.x <= got.x and got.x + got.w <= box.x + box.w and box.y <= got.y and got.y + got.h <= box.y + box.h


# --- VP8 header, manifest

def test_vp8_size_reads_a_key_frame_and_refuses_anything_else() -> None:
    (key, is_key), (delta, _) = vp8_frames("red", 2, w=322, h=178)[:2]
    assert is_key and vp8_size(key) == (322, 178)
    with pytest.raises(ValueError):
        vp8_size(delta)
    with pytest.raises(ValueError):
        vp8_size(b"\x00" * 5)


def test_manifest_is_written_atomically_and_read_back(tmp_path: Path) -> None:
    m = Manifest(id="r", consultation_id="c", started_at="2026-11-25T20:00:00.000+00:00")
    m.events.append(Event(t=1.5, role="patient", mic=True, camera=False, screen=False))
    write_manifest(tmp_path, m)
    assert read_manifest(tmp_path) == m
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary left


@pytest.mark.parametrize("content", ["", "[]", '{"id": "x"}', json.dumps({
    "id": "r", "consultation_id": "c", "started_at": "x", "state": "exploded", "tracks": [], "events": []})])
def test_a_bad_manifest_is_a_manifest_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(ManifestError):
        read_manifest(tmp_path)
    with pytest.raises(ManifestError):
        read_manifest(tmp_path / "missing")


# --- the RTP clock of a track

def test_track_time_unwraps_the_rtp_clock_keeps_order_and_survives_a_jump(tmp_path: Path) -> None:
    (key, _), = vp8_frames("red", 1)[:1]
    track = _TrackFile(tmp_path / "t.webm", TrackKey("p", "patient", "camera", "video"), key, VIDEO_TB)
    start = (1 << 32) - 3000  # wraps after the first frame
    assert track.pts(start, 0.0) == 0
    track.last_pts = 0
    assert track.pts((start + 6000) % (1 << 32), 0.066) == 6000  # across the wrap
    track.last_pts = 6000
    assert track.pts((start + 3000) % (1 << 32), 0.07) == 6001  # late frame: still after the last one
    track.last_pts = 6001
    # the clock leaps an hour: placed by its arrival time instead
    assert track.pts((start + 90000 * 3600) % (1 << 32), 2.0) == 180000
    track.close()


def test_a_full_queue_drops_frames_and_a_video_track_then_waits_for_a_keyframe(tmp_path: Path) -> None:
    manifest = Manifest(id="r", consultation_id="c", started_at="x")
    writer = DiskWriter(tmp_path, manifest, max_queue_frames=2)  # thread not started: nothing drains
    video = TrackKey("p", "patient", "camera", "video")
    audio = TrackKey("a", "patient", "mic", "audio")
    assert writer.frame(video, b"k", 0, VIDEO_TB, True, 0.0)
    assert writer.frame(audio, b"a", 0, AUDIO_TB, False, 0.0)
    assert not writer.frame(video, b"d", 3000, VIDEO_TB, False, 0.1)  # full
    assert not writer.frame(audio, b"a", 960, AUDIO_TB, False, 0.1)
    assert writer.dropped == 2
    while writer._queue.qsize():
        writer._queue.get()
    assert writer.frame(audio, b"a", 1920, AUDIO_TB, False, 0.2)  # audio goes on at once
    assert not writer.frame(video, b"d", 6000, VIDEO_TB, False, 0.2)  # video: a hole until a keyframe
    assert writer.frame(video, b"k", 9000, VIDEO_TB, True, 0.3)
    writer._queue.get()
    assert writer.frame(video, b"d", 12000, VIDEO_TB, False, 0.4)  # and flows again


def test_a_track_is_placed_by_arrival_until_a_capture_time_comes_then_by_that(tmp_path: Path) -> None:
    manifest = Manifest(id="r", consultation_id="c", started_at="x")
    writer = DiskWriter(tmp_path, manifest)
    writer.start()
    audio = TrackKey("a", "patient", "mic", "audio")
    packets = opus_tone(440, 10)
    # no sender report yet: the first frames are timed by arrival (1.0 s)
    for i, data in enumerate(packets[:5]):
        assert writer.frame(audio, data, 5000 + 960 * i, AUDIO_TB, True, 1.0 + 0.02 * i)
    # the report comes: frame 5 (0.1 s of RTP time after the first) was captured at 0.75 s
    for i, data in enumerate(packets[5:], 5):
        assert writer.frame(audio, data, 5000 + 960 * i, AUDIO_TB, True, 1.0 + 0.02 * i, 0.75 + 0.02 * (i - 5))
    writer.stop(2.0)
    assert writer.join(10)
    track, = read_manifest(tmp_path).tracks
    assert (track.arrived, track.start, track.clock) == (1.0, 0.65, "sender")  # the whole track moved
    with av.open(str(tmp_path / track.file)) as c:
        assert [p.pts for p in c.demux(audio=0) if p.pts is not None][:3] == [0, 20, 40]  # ms: RTP spacing kept


# --- the compositor on files the writer made

def pixel(frame: av.VideoFrame, x: float, y: float) -> str:
    rgb = frame.to_ndarray(format="rgb24")
    r, g, b = (int(v) for v in rgb[int(y * rgb.shape[0]), int(x * rgb.shape[1])])
    for name, ref in RGB.items():
        if sum(abs(a - c) for a, c in zip((r, g, b), ref)) < 90:
            return name
    return f"other({r},{g},{b})"


def test_a_shared_screen_takes_the_main_place_with_the_cameras_small(tmp_path: Path) -> None:
    tracks = {
        TrackKey("a", "practitioner", "camera", "video"): (0.0, vp8_frames("red", 45)),
        TrackKey("b", "patient", "camera", "video"): (0.0, vp8_frames("blue", 45)),
        TrackKey("c", "patient", "screen", "video"): (1.0, vp8_frames("green", 30, w=320, h=180)),
    }
    events = [Event(0.0, "patient", True, True, False), Event(1.0, "patient", True, True, True)]
    manifest = write_recording(tmp_path, tracks, events, 3.0)
    summary = compose(tmp_path, tmp_path / "out.mp4", manifest, 640, 240, 15)
    assert summary.frames == 45
    with av.open(str(tmp_path / "out.mp4")) as c:
        frames = list(c.decode(video=0))
    before, during = frames[7], frames[35]  # 0.5 s: cameras only; 2.3 s: the screen
    assert (pixel(before, 0.25, 0.5), pixel(before, 0.75, 0.5)) == ("red", "blue")
    assert pixel(during, 0.35, 0.5) == "green"
    assert pixel(during, 0.87, 0.25) == "red" and pixel(during, 0.87, 0.75) == "blue"


def test_voices_are_placed_on_the_timeline_by_their_start_and_mixed(tmp_path: Path) -> None:
    tracks = {
        TrackKey("a", "practitioner", "mic", "audio"): (0.0, [(p, True) for p in opus_tone(440, 150)]),
        TrackKey("b", "patient", "mic", "audio"): (1.5, [(p, True) for p in opus_tone(1000, 50)]),
    }
    manifest = write_recording(tmp_path, tracks, [], 3.0)
    compose(tmp_path, tmp_path / "out.mp4", manifest, 320, 120, 15)
    with av.open(str(tmp_path / "out.mp4")) as c:
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])

    def level(hz: float, t0: float, t1: float) -> float:
        part = sound[int(t0 * 48000):int(t1 * 48000)]
        spectrum = np.abs(np.fft.rfft(part))
        freqs = np.fft.rfftfreq(len(part), 1 / 48000)
        return float(spectrum[np.argmin(np.abs(freqs - hz))] / (spectrum.mean() + 1e-9))

    assert level(440, 0.2, 1.4) > 20 and level(1000, 0.2, 1.4) < 5  # the patient not yet
    assert level(440, 1.7, 2.4) > 20 and level(1000, 1.7, 2.4) > 20  # both, mixed
    # no picture at all: both sides show the placeholder, never black
    with av.open(str(tmp_path / "out.mp4")) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert 15 < first[5, 5].mean() < 80  # the grey card (black is 0)
