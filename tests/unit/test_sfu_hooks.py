"""Pins the private aiortc 1.16 names the SFU relies on (sfu/receiver_hooks.py, participant.py).

If aiortc changes them, this fails first, with the name that moved.
"""

from __future__ import annotations

import inspect

import aiortc
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpreceiver import RTCRtpReceiver, decoder_worker


def test_aiortc_version_is_the_pinned_one() -> None:
    assert aiortc.__version__ == "1.16.0"


async def test_receiver_private_attributes_exist() -> None:
    pc = RTCPeerConnection()
    receiver = pc.addTransceiver("video").receiver
    assert hasattr(receiver, "_RTCRtpReceiver__decoder_queue")
    assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, JitterBuffer)
    assert inspect.iscoroutinefunction(RTCRtpReceiver._send_rtcp_pli)
    assert isinstance(receiver._RTCRtpReceiver__rtx_ssrc, dict)
    assert hasattr(receiver._RTCRtpReceiver__timestamp_mapper, "map")
    assert isinstance(receiver._RTCRtpReceiver__codecs, dict)
    assert receiver._RTCRtpReceiver__nack_generator is not None
    assert isinstance(receiver.transport._rtp_router.ssrc_table, dict)
    await pc.close()


def test_receiver_hands_frames_to_the_decoder_queue_and_worker_reads_it() -> None:
    src = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in src
    assert "input_q.get()" in inspect.getsource(decoder_worker)


def test_jitter_buffer_internals() -> None:
    buf = JitterBuffer(capacity=16)
    assert hasattr(buf, "_packets") and hasattr(buf, "_origin") and hasattr(buf, "_capacity")
    assert callable(buf.remove)


def test_sender_keyframe_hook_and_pack_path() -> None:
    assert callable(RTCRtpSender._send_keyframe)
    src = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "self.__encoder.pack(data)" in src
