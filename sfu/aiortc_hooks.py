"""Every use of aiortc 1.16's, aioice 0.13's (and pylibsrtp 1.0's) private names, behind named functions.

aiortc has no public API for an SFU (aiortc#55, #449): no raw packets, no
SRTP keys, no socket.  aiortc keeps SDP, ICE and the DTLS handshake; once
DTLS is up the SFU reads and writes SRTP itself (sfu/ingress.py,
sfu/egress.py) through the functions here.  No other module touches a
private aiortc/aioice name; `tests/unit/test_sfu_hooks.py` pins the names
this module relies on, so an aiortc upgrade fails there first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aioice.ice
import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)
from pylibsrtp._binding import ffi as _ffi  # type: ignore[import-not-found]
from pylibsrtp._binding import lib as _lib

logger = logging.getLogger(__name__)

Datagram = Callable[[bytes, tuple[Any, ...]], None]


# ---------------------------------------------------------------- running aiortc's coroutines inline

def run_now(coro: Coroutine[Any, Any, Any], pending: set[asyncio.Task[Any]]) -> None:
    """Run a coroutine that normally completes without waiting, here and now.

    aiortc's handlers are coroutines that rarely wait; a task per call would
    cost more than the call.  Should one wait after all, a task finishes it.
    """
    try:
        waited = coro.send(None)
    except StopIteration:
        return
    except ConnectionError:
        return
    task = asyncio.ensure_future(_finish(coro, waited))
    pending.add(task)
    task.add_done_callback(pending.discard)


async def _finish(coro: Coroutine[Any, Any, Any], waited: Any) -> None:
    try:
        while True:
            if isinstance(waited, asyncio.Future):
                await asyncio.wait([waited])
            else:
                await asyncio.sleep(0)
            waited = coro.send(None)
    except (StopIteration, ConnectionError):
        pass
    finally:
        coro.close()


# ---------------------------------------------------------------- DTLS/SRTP and the ICE socket

def srtp_sessions(dtls: RTCDtlsTransport) -> tuple[pylibsrtp.Session | None, pylibsrtp.Session | None]:
    """The (receive, send) SRTP sessions keyed from the DTLS handshake; None before it ends.

    They are shared with aiortc (its RTCP loops protect with the same send
    session), so SRTCP indexes never collide.
    """
    return dtls._rx_srtp, dtls._tx_srtp


class _LeanSrtp:
    """One of a pylibsrtp session's RTP calls without its per-call wrapper.

    pylibsrtp allocates a length cell, type-checks and dispatches through a
    name-mangled method on every packet: ~1.5 µs per call, a twelfth of the
    forwarding cost (docs/performance.md).  This reuses the session's own C
    buffer (the event loop's thread is its only user, and each call copies its
    result out before returning) and one length cell.
    """

    __slots__ = ("_buffer", "_cdata", "_function", "_length", "_limit", "_session", "_srtp")

    def __init__(self, session: pylibsrtp.Session, function: Any, trailer: int) -> None:
        self._session = session  # owns the C session: it must outlive this object
        self._srtp = session._srtp[0]
        self._cdata = session._cdata
        self._buffer = session._buffer
        self._length = _ffi.new("int *")
        self._function = function
        self._limit = len(session._cdata) - trailer

    def process(self, data: bytes) -> bytes:
        size = len(data)
        if size > self._limit:
            raise ValueError("packet is too long")
        buffer = self._buffer
        buffer[0:size] = data
        length = self._length
        length[0] = size
        error = self._function(self._srtp, self._cdata, length)
        if error:
            raise pylibsrtp.Error(f"SRTP error {error}")
        return buffer[0:length[0]]  # type: ignore[no-any-return]  # cffi's buffer slices are bytes


def rtp_unprotector(session: pylibsrtp.Session) -> Callable[[bytes], bytes]:
    """`session.unprotect` for SRTP packets, without pylibsrtp's per-call overhead."""
    return _LeanSrtp(session, _lib.srtp_unprotect, 0).process


def rtp_protector(session: pylibsrtp.Session) -> Callable[[bytes], bytes]:
    """`session.protect` for RTP packets, without pylibsrtp's per-call overhead."""
    return _LeanSrtp(session, _lib.srtp_protect, pylibsrtp.SRTP_MAX_TRAILER_LEN).process


def ice_protocols(dtls: RTCDtlsTransport) -> list[Any]:
    """The local sockets (aioice protocols) of the transport's ICE connection."""
    return list(dtls.transport._connection._protocols)


def nominated_pairs(dtls: RTCDtlsTransport) -> dict[int, Any]:
    """aioice's live dict of nominated candidate pairs, by component (1: RTP, bundled)."""
    pairs: dict[int, Any] = dtls.transport._connection._nominated
    return pairs


def is_plain_udp(protocol: Any) -> bool:
    """Whether a pair's protocol sends with its transport's `sendto`, as aioice's `send_data` does.

    True for aioice's protocols, host or relayed (a TURN allocation's transport
    has its own `sendto`); anything else is sent through `send_data`.
    """
    return isinstance(protocol, aioice.ice.StunProtocol)


def intercept_datagrams(protocol: Any, handler: Callable[[bytes, tuple[Any, ...], Datagram], None]) -> None:
    """Give every datagram of `protocol` to `handler(data, addr, aioice's own handler)` first."""
    original: Datagram = protocol.datagram_received

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        handler(data, addr, original)

    protocol.datagram_received = datagram_received


def connection_pairs(connection: aioice.ice.Connection) -> dict[int, Any]:
    """aioice's live dict of a connection's nominated candidate pairs, by component."""
    pairs: dict[int, Any] = connection._nominated
    return pairs


def is_from_pair(connection: aioice.ice.Connection, protocol: Any, component: int, addr: tuple[Any, ...]) -> bool:
    """Whether a datagram `protocol` received from `addr` came from the connection's selected pair
    (before ICE selected one: from one of the pairs being checked)."""
    remote = (addr[0], addr[1])
    pair = connection._nominated.get(component)
    pairs = [pair] if pair is not None else connection._check_list
    return any(p.protocol is protocol and p.remote_addr == remote for p in pairs)


def handle_rtcp(dtls: RTCDtlsTransport, plain: bytes, pending: set[asyncio.Task[Any]]) -> None:
    """Let aiortc parse and route an unprotected RTCP compound packet (senders' and receivers' handlers)."""
    run_now(dtls._handle_rtcp_data(plain), pending)


def route_rtp(dtls: RTCDtlsTransport, plain: bytes) -> tuple[RTCRtpReceiver | None, int]:
    """Which receiver aiortc's router gives a packet of an SSRC not seen yet, and its payload type.

    The router learns the SSRC from the `mid` extension or the payload type.
    """
    try:
        packet = RtpPacket.parse(plain, dtls._rtp_header_extensions_map)
    except ValueError:
        return None, -1
    receiver = dtls._rtp_router.route_rtp(packet)
    return (receiver if isinstance(receiver, RTCRtpReceiver) else None), packet.payload_type


def map_ssrc(dtls: RTCDtlsTransport, ssrc: int, receiver: RTCRtpReceiver) -> None:
    """Make aiortc's router send `ssrc`'s RTCP (sender reports) to `receiver`."""
    dtls._rtp_router.ssrc_table[ssrc] = receiver


# ---------------------------------------------------------------- receivers (the publisher's legs)

def on_receive(receiver: RTCRtpReceiver, callback: Callable[[RTCRtpReceiveParameters], None]) -> None:
    """Call `callback(parameters)` once the receiver is negotiated and started."""
    receive = receiver.receive

    async def receive_and_tell(parameters: RTCRtpReceiveParameters) -> None:
        await receive(parameters)
        callback(parameters)

    receiver.receive = receive_and_tell  # type: ignore[method-assign]


def watch_sender_reports(receiver: RTCRtpReceiver, on_report: Callable[[int, int, int], None]) -> None:
    """Call `on_report(ssrc, ntp_timestamp, rtp_timestamp)` for every sender report the publisher sends.

    aiortc's router gives the receiver the SRs of its stream's SSRC (learnt by `route_rtp`);
    the receiver keeps only LSR for its receiver reports.
    """
    handle = receiver._handle_rtcp_packet

    async def handle_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            on_report(packet.ssrc, packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp)
        await handle(packet)

    receiver._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


def drop_receive_estimator(receiver: RTCRtpReceiver) -> None:
    """Free aiortc's receive-side bandwidth estimator (its REMB) of a receiver the fast path feeds.

    aiortc runs it on the packets of its own receive path, which the fast path
    bypasses: it would never run, and each video receiver's holds a rate counter
    of 1000 one-millisecond buckets (~100 KB).  aiortc checks it for None.
    """
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]


def stop_decoder_thread(receiver: RTCRtpReceiver) -> None:
    """End the decoder thread aiortc starts for a receiver the fast path feeds.

    `receive()` starts one thread per receiver (two per participant) that waits
    for encoded frames on a queue; the fast path never gives it one, so at 32
    rooms 128 threads sat idle, each with its stack and thread state.  `None`
    ends the thread's loop (and ends aiortc's remote track, which nothing in
    the SFU reads); with the attribute cleared, aiortc queues no frame and its
    `__stop_decoder` does not join it.
    """
    thread = receiver._RTCRtpReceiver__decoder_thread  # type: ignore[attr-defined]
    if thread is not None:
        receiver._RTCRtpReceiver__decoder_queue.put(None)  # type: ignore[attr-defined]
        receiver._RTCRtpReceiver__decoder_thread = None  # type: ignore[attr-defined]


def rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC our RTCP about this receiver's stream is sent from."""
    ssrc: int | None = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    return ssrc


class ReceptionStatistics(StreamStatistics):
    """aiortc's reception statistics of one SSRC, fed a packet's sequence number and timestamp.

    `count(seq, ts)` does what `StreamStatistics.add(packet)` does (highest
    sequence number and its cycles, packets received, interarrival jitter),
    without a packet object and the call to `uint16_gt`: it runs once per
    received packet (tests/unit/test_sfu_hooks.py feeds both the same packets).
    """

    def count(self, seq: int, ts: int) -> None:
        self.packets_received += 1
        top = self.max_seq
        if self.base_seq is None:
            self.base_seq = seq
        if top is None or 0 < ((seq - top) & 0xFFFF) < 0x8000:  # newer than the highest (uint16_gt)
            arrival = int(time.time() * self._clockrate)
            if top is not None and seq < top:
                self.cycles += 1 << 16
            self.max_seq = seq
            last_ts = self._last_timestamp
            if ts != last_ts and self.packets_received > 1:
                diff = abs((arrival - self._last_arrival) - (ts - last_ts))  # type: ignore[operator]
                self._jitter_q4 += diff - ((self._jitter_q4 + 8) >> 4)
            self._last_arrival = arrival
            self._last_timestamp = ts


def stream_statistics_for(receiver: RTCRtpReceiver, ssrc: int, clock_rate: int) -> ReceptionStatistics:
    """The reception statistics aiortc's RTCP loop reports (RR) for `ssrc`, made if new.

    The fast path feeds them; aiortc's receiver keeps sending the receiver
    reports, with LSR/DLSR from the publisher's sender reports.
    """
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    stats: StreamStatistics | None = streams.get(ssrc)
    if not isinstance(stats, ReceptionStatistics):
        lean = ReceptionStatistics(clock_rate)
        if stats is not None:  # aiortc's own, from before the fast path: keep its counts
            lean.__dict__.update(stats.__dict__)
        stats = streams[ssrc] = lean
    return stats


def stream_statistics(receiver: RTCRtpReceiver) -> list[StreamStatistics]:
    """aiortc's per-SSRC reception statistics for the media streams (not RTX)."""
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    rtx = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    return [stream for ssrc, stream in list(streams.items()) if ssrc not in rtx]


def rtx_ssrcs(receiver: RTCRtpReceiver) -> dict[int, int]:
    """RTX SSRC -> media SSRC, as signalled (ssrc-group FID)."""
    return dict(receiver._RTCRtpReceiver__rtx_ssrc)  # type: ignore[attr-defined]


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs a transceiver ended up with after the offer/answer (empty: none in common).

    The transceiver's own list: what is changed in it before the answer is made is answered.
    """
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    return codecs


# ---------------------------------------------------------------- senders (the subscribers' legs)

def on_send(sender: RTCRtpSender, callback: Callable[[RTCRtpSendParameters], None]) -> None:
    """Call `callback(parameters)` when the sender starts (negotiated, DTLS up), before its loops."""
    send = sender.send

    async def send_and_tell(parameters: RTCRtpSendParameters) -> None:
        callback(parameters)
        await send(parameters)

    sender.send = send_and_tell  # type: ignore[method-assign]


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """The (media, RTX) SSRCs the sender announced in SDP."""
    return sender._ssrc, sender._rtx_ssrc


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback()` for every PLI/FIR the subscriber sends (aiortc only honours them when encoding)."""

    def send_keyframe(*_: Any) -> None:
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def on_nack(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call `callback(sequence_number)` for every packet the subscriber asks this sender to resend."""

    async def retransmit(sequence_number: int) -> None:
        callback(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]


def watch_remb(sender: RTCRtpSender, on_remb: Callable[[int], None]) -> None:
    """Call `on_remb(bitrate)` for every REMB the subscriber sends about this sender."""
    handle = sender._handle_rtcp_packet

    async def handle_rtcp(packet: Any) -> None:
        await handle(packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if sender._ssrc in ssrcs:
                on_remb(bitrate)

    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


def watch_receiver_reports(sender: RTCRtpSender, on_report: Callable[[int, int], None],
                           on_timing: Callable[[int, int], None] = lambda lsr, dlsr: None) -> None:
    """Call `on_report(extended highest sequence number, cumulative packets lost)` and
    `on_timing(LSR, DLSR)` for every receiver report block the subscriber sends about this
    sender (RFC 3550 6.4.1)."""
    handle = sender._handle_rtcp_packet

    async def handle_rtcp(packet: Any) -> None:
        await handle(packet)
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == sender._ssrc:
                    on_timing(report.lsr, report.dlsr)
                    on_report(report.highest_sequence, report.packets_lost)

    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


SenderCounts = Callable[[], tuple[int, int, int, int]]


def report_counts(sender: RTCRtpSender, counts: SenderCounts) -> None:
    """Make the sender's RTCP loop report `counts()` = (NTP time, RTP timestamp, packets, octets) in its SRs.

    The counts are read when an SR goes out, not written per packet.  The
    sender's own LSR (for its RTT estimate) is set from the same NTP time.
    """
    send = sender._send_rtcp

    async def send_rtcp(packets: list[Any]) -> None:
        for i, packet in enumerate(packets):
            if isinstance(packet, RtcpSrPacket) and packet.ssrc == sender._ssrc:
                ntp, rtp, count, octets = counts()
                packets[i] = RtcpSrPacket(ssrc=packet.ssrc, reports=packet.reports, sender_info=RtcpSenderInfo(
                    ntp_timestamp=ntp, rtp_timestamp=rtp,
                    packet_count=count & 0xFFFFFFFF, octet_count=octets & 0xFFFFFFFF))
                sender._RTCRtpSender__lsr = (ntp >> 16) & 0xFFFFFFFF  # type: ignore[attr-defined]
                sender._RTCRtpSender__packet_count = count  # type: ignore[attr-defined]  # getStats, RR loss
                sender._RTCRtpSender__octet_count = octets  # type: ignore[attr-defined]
        await send(packets)

    sender._send_rtcp = send_rtcp  # type: ignore[method-assign]


# ---------------------------------------------------------------- ICE gathering (sfu/ice.py)

def original_host_addresses() -> Callable[[bool, bool], list[str]]:
    return aioice.ice.get_host_addresses


def replace_host_addresses(addresses: Callable[[bool, bool], list[str]]) -> None:
    """Process-wide: the interfaces aioice gathers host candidates on."""
    aioice.ice.get_host_addresses = addresses  # type: ignore[assignment]


def replace_candidate_gathering(gather: Callable[..., Coroutine[Any, Any, list[Any]]]) -> None:
    """Process-wide: `gather(connection, component, addresses)` makes a connection's host candidates."""

    async def get_component_candidates(conn: aioice.ice.Connection, component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Any]:
        return await gather(conn, component, addresses)

    aioice.ice.Connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign,assignment]


def add_ice_protocol(connection: aioice.ice.Connection, protocol: Any) -> None:
    """Make a socket bound by us one of the connection's local candidates' sockets."""
    connection._protocols.append(protocol)
