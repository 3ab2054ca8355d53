"""Per-participant media statistics, from aiortc's reports and the SFU's own counters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import aiortc_hooks as hooks

if TYPE_CHECKING:
    from .participant import Participant


async def participant_stats(participant: Participant) -> dict[str, Any]:
    """Cumulative counters of one participant's media, up (to us) and down (to them)."""
    pc = participant.pc
    report = list((await pc.getStats()).values()) if pc is not None else []
    by_ssrc: dict[tuple[str, int], Any] = {(s.type, s.ssrc): s for s in report if hasattr(s, "ssrc")}
    by_id: dict[str, Any] = {s.id: s for s in report}
    up: dict[str, dict[str, Any]] = {}
    for source, producer in participant.producers.items():
        inbound = hooks.stream_statistics(producer.receiver)
        up[source] = {
            "kind": producer.kind,
            "frames": producer.frames,
            "bytes": producer.bytes,
            "keyframes": producer.keyframes,
            "keyframe_requests_sent": producer.keyframe_requests,
            "nacks_sent": producer.nacks_sent,
            "unrepaired": producer.stream.unrepaired,  # lost on the way in, NACKed, never came
            # repaired packets by the NACKs each took (1, 2, 3, 4 or more), and the longest repair (s)
            "repaired_after_nacks": list(producer.stream.repaired_after),
            "slowest_repair_s": round(producer.stream.slowest_repair, 3),
            # the floor under the subscribers' video jitter buffers, from those repairs (sfu/playout.py)
            "playout_floor_ms": round(1000 * producer.playout_floor),
            "packets": sum(s.packets_received for s in inbound),
            "packets_lost": sum(max(0, s.packets_lost) for s in inbound),
            "jitter": max((s.jitter for s in inbound), default=0),
            "bitrate_estimate": producer.sent_estimate,
        }
    down: dict[str, dict[str, Any]] = {}
    for source, consumer in participant.consumers.items():
        sender = participant.senders.get(source)
        egress = consumer.egress
        # aiortc files remote-inbound-rtp under the reporter's SSRC: find ours by its id
        remote = by_id.get(f"remote-inbound-rtp_{id(sender)}") if sender is not None else None
        down[source] = {
            "kind": consumer.kind,
            "frames": consumer.frames_sent,
            "frames_dropped": consumer.frames_dropped,
            "keyframe_requests_received": consumer.keyframe_requests,
            # keyframes the SFU asked for this leg: NACKs it could not answer; the leg collapsing
            "repair_keyframes": consumer.repair_keyframes,
            "collapse_keyframes": consumer.collapse_keyframes,
            "nacks_received": consumer.nacks_received,
            # of which for packets from before the last keyframe, or before a collapse: not resent
            "stale_nacks": consumer.stale_nacks,
            # packets resent because the subscriber's transport-wide feedback said lost, before any NACK
            "feedback_repairs": consumer.feedback_repairs,
            "packets": egress.packets if egress else 0,
            "bytes": egress.octets if egress else 0,
            "packets_lost": max(0, remote.packetsLost) if remote else 0,
            "fraction_lost": (remote.fractionLost / 256) if remote and remote.fractionLost is not None else 0.0,
            "estimate": consumer.estimate,
            "estimated_by": consumer.estimated_by,
            "remb": consumer.remb,
            "loss_ceiling": consumer.loss_ceiling,
        }
    return {
        "id": participant.id,
        "role": participant.role,
        "media_state": participant.media_state,
        "rtt_ms": round(1000 * rtt, 1) if (rtt := participant.rtt()) is not None else None,
        "transport_cc": participant.transport_cc(),
        "up": up,
        "down": down,
    }
