"""The recorder as a room subscriber with real aiortc peers, then the compositor on its files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import AudioStreamTrack
from helpers.media_peers import Peer, connect

from recorder import Recorder
from recorder.compositor import compose_recording
from recorder.manifest import read_manifest
from sfu import Room, SfuOptions

# media_peers' cameras are 160x120: side by side at that size
WIDTH, HEIGHT, FPS = 320, 120, 15


class ToneTrack(AudioStreamTrack):
    """A microphone playing a sine tone (aiortc's own audio track is silence)."""

    def __init__(self, hz: float) -> None:
        super().__init__()
        self.hz = hz

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        t = (frame.pts + np.arange(frame.samples)) / frame.sample_rate
        tone = (np.sin(2 * np.pi * self.hz * t) * 8000).astype(np.int16)
        frame.planes[0].update(tone.tobytes())
        return frame


def tone_peer(colour: str, hz: float) -> Peer:
    peer = Peer(colour)
    peer.pc.getTransceivers()[0].sender.replaceTrack(ToneTrack(hz))
    return peer


def strength(sound: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(sound))
    freqs = np.fft.rfftfreq(len(sound), 1 / 48000)
    return float(spectrum[np.argmin(np.abs(freqs - hz))] / (spectrum.mean() + 1e-9))


def rgb_at(frame: av.VideoFrame, x: float, y: float) -> tuple[int, int, int]:
    rgb = frame.to_ndarray(format="rgb24")
    h, w, _ = rgb.shape
    px = rgb[int(y * h), int(x * w)]
    return int(px[0]), int(px[1]), int(px[2])


def colour(px: tuple[int, int, int]) -> str:
    r, g, b = px
    if r > 150 and g < 90 and b < 90:
        return "red"
    if b > 150 and r < 90 and g < 90:
        return "blue"
    return f"other{px}"


async def record(tmp_path: Path, seconds: float, *, camera_off_after: float | None = None) -> Path:
    room = Room("c1", SfuOptions())
    red, blue = tone_peer("red", 440), tone_peer("blue", 1000)
    folder = tmp_path / "rec"
    try:
        await connect(room, "a", "practitioner", red)
        await connect(room, "b", "patient", blue)
        await red.wait_video()
        await blue.wait_video()
        recorder = Recorder("r1", "c1", folder)
        recorder.start()
        recorder.attach(room)
        for role in ("practitioner", "patient"):
            recorder.note_tracks(role, {"mic": True, "camera": True, "screen": False})
        if camera_off_after is not None:
            await asyncio.sleep(camera_off_after)
            recorder.note_tracks("patient", {"mic": True, "camera": False, "screen": False})
            await asyncio.sleep(seconds - camera_off_after)
        else:
            await asyncio.sleep(seconds)
        recorder.stop()
        manifest = await recorder.wait_closed()
        assert manifest.state == "stopped" and recorder.dropped == 0
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())
    return folder


async def test_recorder_writes_each_track_encoded_and_the_compositor_puts_them_side_by_side(tmp_path: Path) -> None:
    folder = await record(tmp_path, 3.0)
    manifest = read_manifest(folder)
    kinds = sorted((t.role, t.source) for t in manifest.tracks)
    assert kinds == [("patient", "camera"), ("patient", "mic"), ("practitioner", "camera"), ("practitioner", "mic")]
    assert manifest.duration is not None and 2.9 <= manifest.duration <= 3.5
    for track in manifest.tracks:
        with av.open(str(folder / track.file)) as c:
            stream = c.streams[0]
            assert stream.codec_context.name == track.codec
            assert sum(1 for _ in c.demux(stream)) > 10  # encoded packets, as they came

    # the worker process's function, called here directly
    result = await asyncio.to_thread(compose_recording, str(folder), WIDTH, HEIGHT, FPS)
    assert read_manifest(folder).state == "composed"
    with av.open(result["output"]) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", WIDTH, HEIGHT)
        assert a.codec_context.name == "aac"
        assert c.duration is not None and abs(c.duration / 1e6 - manifest.duration) < 0.5
        frames = list(c.decode(v))
    middle = frames[len(frames) // 2]
    assert colour(rgb_at(middle, 0.25, 0.5)) == "red"
    assert colour(rgb_at(middle, 0.75, 0.5)) == "blue"
    with av.open(result["output"]) as c:
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    # both voices mixed: each side's tone is there
    assert strength(sound, 440) > 20 and strength(sound, 1000) > 20, (strength(sound, 440), strength(sound, 1000))
    # and nothing in between (a resampling or mixing error would put a tone elsewhere): the
    # tones stand thousands of times over the spectrum's mean, single bins of the codec's
    # noise up to ~6, so "absent" is under a hundredth of the weaker tone
    assert strength(sound, 700) < min(strength(sound, 440), strength(sound, 1000)) / 100


async def test_a_camera_turned_off_shows_a_placeholder_not_a_frozen_picture(tmp_path: Path) -> None:
    folder = await record(tmp_path, 3.0, camera_off_after=1.0)
    result = await asyncio.to_thread(compose_recording, str(folder), WIDTH, HEIGHT, FPS)
    with av.open(result["output"]) as c:
        frames = list(c.decode(video=0))
    late = frames[int(len(frames) * 0.85)]
    assert colour(rgb_at(late, 0.25, 0.5)) == "red"
    right = rgb_at(late, 0.75, 0.1)
    assert colour(right) != "blue" and max(right) - min(right) < 30, right  # grey card, not blue


async def test_h264_cameras_are_recorded_in_matroska_and_composed(tmp_path: Path) -> None:
    # the SFU offers H.264 only: aiortc's peers encode it with libx264 (packetization-mode 1)
    room = Room("c2", SfuOptions(video_codecs=["H264"]))
    red, blue = tone_peer("red", 440), tone_peer("blue", 1000)
    folder = tmp_path / "rec"
    try:
        await connect(room, "a", "practitioner", red)
        await connect(room, "b", "patient", blue)
        await red.wait_video()
        await blue.wait_video()
        recorder = Recorder("r2", "c2", folder)
        recorder.start()
        recorder.attach(room)
        await asyncio.sleep(3.0)
        recorder.stop()
        manifest = await recorder.wait_closed()
        assert recorder.dropped == 0
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())
    assert sorted((t.source, t.codec, t.file[-4:]) for t in manifest.tracks) == [
        ("camera", "h264", ".mkv"), ("camera", "h264", ".mkv"), ("mic", "opus", "webm"), ("mic", "opus", "webm")]
    for track in manifest.tracks:
        if track.kind == "video":
            with av.open(str(folder / track.file)) as c:
                assert c.format.name.startswith("matroska")
                pictures = list(c.decode(video=0))
            assert len(pictures) > 20 and (pictures[0].width, pictures[0].height) == (160, 120)
            want = "red" if track.role == "practitioner" else "blue"
            assert colour(rgb_at(pictures[-1], 0.5, 0.5)) == want
    result = await asyncio.to_thread(compose_recording, str(folder), WIDTH, HEIGHT, FPS)
    with av.open(result["output"]) as c:
        frames = list(c.decode(video=0))
    middle = frames[len(frames) // 2]
    assert colour(rgb_at(middle, 0.25, 0.5)) == "red"
    assert colour(rgb_at(middle, 0.75, 0.5)) == "blue"
