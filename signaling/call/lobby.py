"""The waiting-room handshake as a pure state machine (no I/O).

PRODUCT.md §2: the first side to press "Accéder à la vidéo consultation" invites
the other; the other's "Je suis prêt" puts both in the call.  The state is kept
by the server and persisted with the consultation, so a reload, a late arrival
or a server restart finds each side where it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from clinic import ConsultationState, Role, Stage

from ..errors import ProtocolError

_CS = ConsultationState


def other(role: Role) -> Role:
    return Role.PATIENT if role is Role.PRACTITIONER else Role.PRACTITIONER


@dataclass(frozen=True, slots=True)
class LobbyState:
    """The consultation's state and each side's stage."""

    consultation: ConsultationState
    practitioner: Stage
    patient: Stage

    def stage(self, role: Role) -> Stage:
        return self.practitioner if role is Role.PRACTITIONER else self.patient

    def _with(self, consultation: ConsultationState, stages: dict[Role, Stage]) -> LobbyState:
        return LobbyState(
            consultation,
            stages.get(Role.PRACTITIONER, self.practitioner),
            stages.get(Role.PATIENT, self.patient),
        )


def _out_of_order(why: str) -> ProtocolError:
    return ProtocolError("out-of-order", why)


def apply(state: LobbyState, role: Role, action: str) -> LobbyState:
    """The state after `role` does `action` (join, ready, hangup), or ProtocolError."""
    me, peer = state.stage(role), state.stage(other(role))
    if state.consultation in (_CS.ENDED, _CS.CLOSED):
        raise _out_of_order("the consultation has ended")
    if action in ("join", "ready"):
        if me is not Stage.WAITING_ROOM:
            raise _out_of_order(f"'{action}' is only valid in the waiting room (you are {me.value})")
        if peer in (Stage.JOINED, Stage.IN_CALL):
            both = {role: Stage.IN_CALL, other(role): Stage.IN_CALL}
            return state._with(_CS.IN_CALL, both)
        if action == "ready":
            raise _out_of_order("'ready' needs the other side to be waiting; send 'join'")
        consultation = _CS.WAITING if state.consultation is _CS.SCHEDULED else state.consultation
        return state._with(consultation, {role: Stage.JOINED})
    if action == "hangup":
        if me is not Stage.IN_CALL:
            raise _out_of_order(f"'hangup' is only valid in the call (you are {me.value})")
        if role is Role.PRACTITIONER:
            return state._with(_CS.ENDED, {Role.PRACTITIONER: Stage.ENDED, Role.PATIENT: Stage.ENDED})
        return state._with(state.consultation, {role: Stage.WAITING_ROOM})
    raise ValueError(f"unknown lobby action {action!r}")
