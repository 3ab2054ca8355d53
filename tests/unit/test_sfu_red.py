"""Opus in RED: parsed, rewritten per leg, stripped for legs and sinks without it (sfu/red.py)."""

from __future__ import annotations

from sfu import red

OPUS_A, OPUS_B = b"\xfc\x01\x02", b"\xfc\x03\x04\x05"
# RFC 2198: one redundant block (PT 111, ts offset 960, 3 bytes), then the primary (PT 111)
RED_PAYLOAD = bytes([0x80 | 111, (960 >> 6) & 0xFF, ((960 & 0x3F) << 2) | 0, 3, 111]) + OPUS_A + OPUS_B


def test_the_primary_block_is_found_behind_the_redundant_ones() -> None:
    assert red.primary(RED_PAYLOAD) == (111, OPUS_B)
    assert red.primary(bytes([111]) + OPUS_B) == (111, OPUS_B)  # no redundancy (first packet)
    for bad in (b"", bytes([0x80 | 111, 0, 0]), bytes([0x80 | 111, 0, 0, 200, 111]) + OPUS_A):
        assert red.primary(bad) is None


def test_block_payload_types_are_rewritten_for_the_leg() -> None:
    out = red.with_block_type(RED_PAYLOAD, 109)
    assert out is not None and out[0] == 0x80 | 109 and out[4] == 109 and out[5:] == RED_PAYLOAD[5:]
    assert red.with_block_type(bytes([0x80 | 111, 0]), 109) is None


def test_red_is_answered_first_only_when_offered_and_aiortc_is_left_alone() -> None:
    import aiortc.codecs
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    def opus() -> RTCRtpCodecParameters:
        return RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)

    offered = [opus(), RTCRtpCodecParameters(mimeType="audio/red", clockRate=48000, channels=2, payloadType=63,
                                             parameters={"111/111": None})]
    negotiated = [opus()]
    assert red.answer_first(negotiated, offered) is True
    assert [(c.mimeType, c.payloadType, c.parameters) for c in negotiated][0] == ("audio/red", 63, {"111/111": None})
    assert red.answer_first(negotiated, offered) is False and len(negotiated) == 2  # once
    plain = [opus()]
    assert red.answer_first(plain, [opus()]) is False and len(plain) == 1  # not offered: Opus alone
    # aiortc's own codec table is untouched: its peers in this process never offer RED
    assert not any(c.mimeType.lower() == "audio/red" for c in aiortc.codecs.CODECS["audio"])
