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


def test_receiver_gives_each_unwrapped_packet_to_the_jitter_buffer() -> None:
    # sfu/rtp_forward.py PacketTap: every packet after RTX unwrapping and NACK bookkeeping
    src = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert src.index("unwrap_rtx(") < src.index("self.__jitter_buffer.add(packet)")
    assert src.index("self.__nack_generator.add(packet)") < src.index("self.__jitter_buffer.add(packet)")


async def test_sender_private_names_the_egress_writes() -> None:
    # sfu/rtp_forward.py RtpEgress and participant._forward_packets
    pc = RTCPeerConnection()
    sender = pc.addTransceiver("video").sender
    for name in ("packet_count", "octet_count", "rtp_timestamp", "ntp_timestamp"):
        assert isinstance(getattr(sender, f"_RTCRtpSender__{name}"), int)
    assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
    assert inspect.iscoroutinefunction(RTCRtpSender._retransmit)
    assert "await self._retransmit(seq)" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self.__rtcp_task = asyncio.ensure_future(self._run_rtcp())" in inspect.getsource(RTCRtpSender.send)
    from aiortc.rtcdtlstransport import RTCDtlsTransport

    assert inspect.iscoroutinefunction(RTCDtlsTransport._send_rtp)
    await pc.close()
