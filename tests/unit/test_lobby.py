"""The waiting-room handshake (PRODUCT.md §2) as a pure state machine."""

from __future__ import annotations

import pytest

from clinic import ConsultationState as CS
from clinic import Role, Stage
from signaling.call.lobby import LobbyState, apply
from signaling.errors import ProtocolError

P, Q = Role.PRACTITIONER, Role.PATIENT
W, J, I, E = Stage.WAITING_ROOM, Stage.JOINED, Stage.IN_CALL, Stage.ENDED
START = LobbyState(CS.SCHEDULED, W, W)


def run(steps: list[tuple[Role, str]], state: LobbyState = START) -> LobbyState:
    for role, action in steps:
        state = apply(state, role, action)
    return state


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([(P, "join")], LobbyState(CS.WAITING, J, W)),
        ([(Q, "join")], LobbyState(CS.WAITING, W, J)),
        # either side first, the other's "Je suis prêt" starts the call
        ([(P, "join"), (Q, "ready")], LobbyState(CS.IN_CALL, I, I)),
        ([(Q, "join"), (P, "ready")], LobbyState(CS.IN_CALL, I, I)),
        # pressing "Accéder" once invited is the same as "Je suis prêt"
        ([(Q, "join"), (P, "join")], LobbyState(CS.IN_CALL, I, I)),
        # the patient leaves the call and comes back; the practitioner stays
        ([(P, "join"), (Q, "ready"), (Q, "hangup")], LobbyState(CS.IN_CALL, I, W)),
        ([(P, "join"), (Q, "ready"), (Q, "hangup"), (Q, "join")], LobbyState(CS.IN_CALL, I, I)),
        # the practitioner's hang-up ends the consultation for both
        ([(P, "join"), (Q, "ready"), (P, "hangup")], LobbyState(CS.ENDED, E, E)),
    ],
)
def test_handshake(steps: list[tuple[Role, str]], expected: LobbyState) -> None:
    assert run(steps) == expected


@pytest.mark.parametrize(
    ("state", "role", "action", "why"),
    [
        (START, Q, "ready", "needs the other side"),
        (LobbyState(CS.WAITING, J, W), P, "join", "only valid in the waiting room"),
        (LobbyState(CS.WAITING, J, W), P, "ready", "only valid in the waiting room"),
        (START, P, "hangup", "only valid in the call"),
        (LobbyState(CS.IN_CALL, I, I), Q, "join", "only valid in the waiting room"),
        (LobbyState(CS.ENDED, E, E), Q, "join", "has ended"),
        (LobbyState(CS.CLOSED, E, E), P, "hangup", "has ended"),
    ],
)
def test_out_of_order_is_refused(state: LobbyState, role: Role, action: str, why: str) -> None:
    with pytest.raises(ProtocolError) as info:
        apply(state, role, action)
    assert info.value.code == "out-of-order"
    assert why in info.value.message


def test_a_late_arrival_sees_the_invitation_from_the_persisted_state() -> None:
    # the practitioner joined, then the server restarted: the state comes back from storage
    restored = LobbyState(CS.WAITING, J, W)
    assert restored.stage(P) is J
    assert apply(restored, Q, "ready") == LobbyState(CS.IN_CALL, I, I)
