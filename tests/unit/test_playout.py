"""The playout floor: what a publisher's uplink repairs take, told to its subscribers' browsers (sfu/playout.py)."""

from __future__ import annotations

from aiortc.rtp import RtpPacket
from test_rtp_forward import FakeProducer, leg, parse, pkt

from sfu import Consumer, playout
from sfu.egress import RtpEgress, _header_template

OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=rtpmap:111 opus/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
    f"a=extmap:5 {playout.URI}", "a=rtpmap:96 VP8/90000", ""])
ANSWER = "\r\n".join([
    "v=0", "o=- 3 4 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=rtpmap:111 opus/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=rtpmap:96 VP8/90000", ""])


def test_the_answer_takes_the_extension_on_the_video_sections_that_offer_it() -> None:
    answer, ext_id = playout.add_playout_delay(ANSWER, OFFER)
    assert ext_id == 5
    audio, video = answer.split("m=video")
    assert playout.URI not in audio and f"a=extmap:5 {playout.URI}\r\n" in video
    assert playout.add_playout_delay(ANSWER, OFFER.replace(f"a=extmap:5 {playout.URI}\r\n", "")) == (ANSWER, None)
    # a two-byte-header id (15 and over) the SFU's one-byte blocks cannot carry: not answered
    assert playout.add_playout_delay(ANSWER, OFFER.replace("a=extmap:5 ", "a=extmap:15 ")) == (ANSWER, None)


def test_the_floor_is_what_most_recent_repairs_took_and_none_on_a_clean_uplink() -> None:
    floor = playout.PlayoutFloor()
    assert floor.floor(0.0) == 0.0
    floor.repaired(0.16, 1.0)
    floor.repaired(0.17, 1.1)
    assert floor.floor(1.2) == 0.0  # two repairs: a clean uplink's odd loss adds no delay
    for i in range(7):
        floor.repaired(0.15 + i / 1000, 1.2 + i / 10)
    floor.repaired(0.40, 2.0)  # a repair that took two rounds: among the 20 % not waited for
    assert abs(floor.floor(2.0) - (0.17 + playout.MARGIN)) < 1e-9
    for i in range(10):
        floor.repaired(2.0, 3.0)
    assert floor.floor(3.0) == playout.MAX_FLOOR  # a conversation does not wait seconds
    assert floor.floor(3.0 + playout.WINDOW + 0.1) == 0.0  # the uplink healed: the floor goes


def test_the_extension_bytes_give_the_minimum_and_the_default_maximum() -> None:
    assert playout.decode(playout.encode(0.183)) == (0.18, playout.MAX_DELAY)
    assert playout.decode(playout.NONE) == (0.0, playout.MAX_DELAY)
    assert playout.decode(playout.encode(100.0))[0] == 0xFFF * 0.01


def _extensions(data: bytes) -> dict[int, bytes]:
    # the one-byte-header elements (RFC 8285) of an RTP packet without CSRC
    assert data[0] & 0x10 and data[12:14] == b"\xbe\xde"
    block = data[16:16 + 4 * int.from_bytes(data[14:16], "big")]
    out, at = {}, 0
    while at < len(block) and block[at]:
        length = (block[at] & 0x0F) + 1
        out[block[at] >> 4] = block[at + 1:at + 1 + length]
        at += 1 + length
    return out


def test_every_video_packet_carries_its_publishers_floor_beside_the_other_extensions() -> None:
    sender, parameters = leg("video", transport_cc=5)
    parameters.playout_delay = 6
    # the other extensions stay where aiortc writes them (the template's first version put them on
    # the block's length when the element was appended: Chromium decoded no frame)
    header, ast_at, _, tseq_at, playout_at = _header_template(parameters, "video")
    assert (ast_at, tseq_at) == _header_template(leg("video", transport_cc=5)[1], "video")[1:4:2]
    consumer = Consumer("video", "camera")
    producer = FakeProducer()
    consumer.bind(producer)  # type: ignore[arg-type]
    consumer.start(RtpEgress("video", parameters, sender.transport.sent.append))  # type: ignore[arg-type]
    consumer.on_packet(producer, pkt(1, 0, b"\x10\x00", marker=True), True, 1.0)  # type: ignore[arg-type]
    producer.playout_delay = playout.encode(0.18)
    consumer.on_packet(producer, pkt(2, 3000, b"\x10\x01", marker=True), False, 1.03)  # type: ignore[arg-type]
    first, second = sender.transport.sent
    assert playout.decode(_extensions(first)[6]) == (0.0, playout.MAX_DELAY)
    assert playout.decode(_extensions(second)[6]) == (0.18, playout.MAX_DELAY)
    # aiortc reads the rest of the header as before: mid, transport-wide number, payload
    packet = RtpPacket.parse(second, parameters.extensions)
    assert packet.extensions.mid == "1" and packet.extensions.transport_sequence_number is not None
    assert packet.payload == b"\x10\x01" and packet.sequence_number == (parse(first).sequence_number + 1) & 0xFFFF
