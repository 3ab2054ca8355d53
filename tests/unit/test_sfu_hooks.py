"""Pins the private aiortc 1.16 / aioice 0.13 names that sfu/aiortc_hooks.py relies on.

sfu/aiortc_hooks.py is the only module of the SFU allowed to touch them; if
aiortc changes one, this fails first, with the name that moved.
"""

from __future__ import annotations

import ast
import inspect
import queue
from pathlib import Path

import aioice
import aioice.ice
import aiortc
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics, decoder_worker

SFU = Path(__file__).resolve().parents[2] / "sfu"


def test_versions_are_the_pinned_ones() -> None:
    assert aiortc.__version__ == "1.16.0"
    assert aioice.__version__ == "0.13.0"


def _private_names(paths: list[Path]) -> set[str]:
    """The private attribute and method names a package defines (self._x = ..., def _x)."""
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_"):
                names.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name.startswith("_"):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id.startswith("_"):
                names.add(node.id)
    return names


def test_no_other_sfu_module_touches_a_private_aiortc_or_aioice_name() -> None:
    libraries = [*Path(aiortc.__file__).parent.rglob("*.py"), *Path(aioice.__file__).parent.rglob("*.py")]
    theirs = _private_names(libraries) - _private_names(list(SFU.glob("*.py")))
    offenders = []
    for path in sorted(SFU.glob("*.py")):
        if path.name == "aiortc_hooks.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (node.attr in theirs or node.attr.startswith(("_RTC", "_Stun"))):
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and any(a.name.startswith("_") for a in node.names):
                offenders.append(f"{path.name}:{node.lineno} import {[a.name for a in node.names]}")
    assert offenders == []
    # and the hooks module does use them (this test would be vacuous otherwise)
    hooks = ast.parse((SFU / "aiortc_hooks.py").read_text())
    assert {"_rx_srtp", "_nominated", "_protocols", "_rtp_router"} <= {
        n.attr for n in ast.walk(hooks) if isinstance(n, ast.Attribute)}


async def test_dtls_transport_and_ice_connection_names() -> None:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video")
    dtls = transceiver.receiver.transport
    assert dtls._rx_srtp is None and dtls._tx_srtp is None  # set by _setup_srtp at the handshake's end
    assert "self._rx_srtp = Session(rx_policy)" in inspect.getsource(RTCDtlsTransport._setup_srtp)
    connection = dtls.transport._connection
    assert isinstance(connection._protocols, list) and isinstance(connection._nominated, dict)
    assert isinstance(connection._check_list, list)  # is_from_pair, before a pair is selected
    assert inspect.iscoroutinefunction(RTCDtlsTransport._handle_rtcp_data)
    assert isinstance(dtls._rtp_router, RtpRouter) and isinstance(dtls._rtp_router.ssrc_table, dict)
    assert callable(dtls._rtp_router.route_rtp)
    assert hasattr(dtls, "_rtp_header_extensions_map")
    assert isinstance(transceiver._codecs, list)
    await pc.close()


def test_aioice_names() -> None:
    assert callable(aioice.ice.get_host_addresses)
    assert inspect.iscoroutinefunction(aioice.ice.Connection.get_component_candidates)
    assert "self.receiver.data_received(data" in inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    assert "self.transport.sendto(data, addr)" in inspect.getsource(aioice.ice.StunProtocol.send_data)
    assert "active_pair.protocol.send_data(data, active_pair.remote_addr)" in inspect.getsource(
        aioice.ice.Connection.sendto)


async def test_receiver_names() -> None:
    pc = RTCPeerConnection()
    receiver = pc.addTransceiver("video").receiver
    assert isinstance(receiver._RTCRtpReceiver__remote_streams, dict)
    assert isinstance(receiver._RTCRtpReceiver__rtx_ssrc, dict)
    assert isinstance(receiver._RTCRtpReceiver__rtcp_ssrc, int)
    assert inspect.iscoroutinefunction(RTCRtpReceiver.receive)
    # aiortc's RTCP loop sends receiver reports from the statistics the ingress feeds
    assert "for ssrc, stream in self.__remote_streams.items()" in inspect.getsource(RTCRtpReceiver._run_rtcp)
    stats_add = inspect.getsource(StreamStatistics.add)
    assert "packet.sequence_number" in stats_add and "packet.timestamp" in stats_add
    # drop_receive_estimator: a video receiver's REMB estimator, which aiortc skips when None
    assert isinstance(receiver._RTCRtpReceiver__remote_bitrate_estimator, RemoteBitrateEstimator)
    assert "if self.__remote_bitrate_estimator is not None" in inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    # stop_decoder_thread: receive() starts a thread reading this queue until None; frames only go to it while set
    assert receiver._RTCRtpReceiver__decoder_thread is None
    assert isinstance(receiver._RTCRtpReceiver__decoder_queue, queue.Queue)
    assert "if task is None" in inspect.getsource(decoder_worker)
    assert "and self.__decoder_thread:" in inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "if self.__decoder_thread:" in inspect.getsource(RTCRtpReceiver._RTCRtpReceiver__stop_decoder)
    await pc.close()


async def test_sender_names() -> None:
    pc = RTCPeerConnection()
    sender = pc.addTransceiver("video").sender
    assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
    for name in ("packet_count", "octet_count", "lsr"):
        assert hasattr(sender, f"_RTCRtpSender__{name}")
    assert callable(RTCRtpSender._send_keyframe)
    assert inspect.iscoroutinefunction(RTCRtpSender._retransmit)
    assert inspect.iscoroutinefunction(RTCRtpSender._handle_rtcp_packet)
    assert "await self._retransmit(seq)" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "await self._send_rtcp(packets)" in inspect.getsource(RTCRtpSender._run_rtcp)
    await pc.close()


async def test_receiver_rtcp_handler() -> None:
    # watch_sender_reports wraps the instance's handler; aiortc's transport calls it per RTCP packet
    assert inspect.iscoroutinefunction(RTCRtpReceiver._handle_rtcp_packet)
    assert "isinstance(packet, RtcpSrPacket)" in inspect.getsource(RTCRtpReceiver._handle_rtcp_packet)
    assert "await recipient._handle_rtcp_packet(packet)" in inspect.getsource(RTCDtlsTransport._handle_rtcp_data)


def test_the_lean_srtp_calls_interoperate_with_pylibsrtp_and_fail_like_it() -> None:
    import os

    import pylibsrtp
    import pytest
    from pylibsrtp import Policy, Session

    from sfu import aiortc_hooks as hooks

    assert pylibsrtp.__version__ == "1.0.0"  # the session's _srtp, _cdata and _buffer
    key = os.urandom(30)
    sender = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    receiver = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    protect, unprotect = hooks.rtp_protector(sender), hooks.rtp_unprotector(receiver)
    packets = [bytes([0x80, 96, 0, seq, 0, 0, 0, 1, 0, 0, 0, 5]) + os.urandom(200) for seq in range(4)]
    # ours -> pylibsrtp, pylibsrtp -> ours, ours -> ours: the same bytes come back
    assert receiver.unprotect(protect(packets[0])) == packets[0]
    assert unprotect(sender.protect(packets[1])) == packets[1]
    protected = protect(packets[2])
    assert len(protected) == len(packets[2]) + 10 and unprotect(protected) == packets[2]
    with pytest.raises(pylibsrtp.Error):
        unprotect(protected)  # a replay
    with pytest.raises(pylibsrtp.Error):
        good = protect(packets[3])
        unprotect(good[:-1] + bytes([good[-1] ^ 1]))  # a forged tag (one bit flipped: never the same tag)
    with pytest.raises(ValueError, match="too long"):
        protect(packets[0] + bytes(1400))


def test_reception_statistics_count_like_aiortcs_add() -> None:
    # the fast path's per-packet call must leave aiortc's receiver reports exactly as its own add() would
    import random
    from unittest import mock

    from aiortc.rtp import RtpPacket

    from sfu import aiortc_hooks as hooks

    rng = random.Random(14)
    seq, ts, packets = 65500, 4_294_960_000, []
    for _ in range(3000):  # across a sequence-number wrap and a timestamp wrap
        step = rng.choice([1, 1, 1, 1, 2, 5, -3, 0, 40000])  # in order, gaps, late, duplicates, a jump
        seq = (seq + step) & 0xFFFF
        ts = (ts + rng.choice([0, 3000, 3000, 6000])) & 0xFFFFFFFF
        packets.append((seq, ts, rng.random()))
    theirs, ours = StreamStatistics(90000), hooks.ReceptionStatistics(90000)
    clock = [1000.0]
    with mock.patch("time.time", lambda: clock[0]):
        for seq, ts, wait in packets:
            clock[0] += wait / 100
            theirs.add(RtpPacket(sequence_number=seq, timestamp=ts))
            ours.count(seq, ts)
    assert theirs.max_seq is not None and theirs.cycles >= 1 << 16 and theirs.jitter > 0  # the walk did wrap
    for name in ("base_seq", "max_seq", "cycles", "packets_received", "jitter", "packets_expected",
                 "packets_lost", "fraction_lost"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours._jitter_q4 == theirs._jitter_q4  # the jitter before its rounding
