"""The call-quality level shown to each side: good / fair / poor, steady under steady conditions."""

from __future__ import annotations

from dataclasses import dataclass

# quality levels, best first: (name, max loss fraction, max rtt in ms)
LEVELS = (("good", 0.02, 150.0), ("fair", 0.08, 400.0))
_ORDER = {"good": 0, "fair": 1, "poor": 2}


def quality(loss: float, rtt_ms: float | None) -> str:
    """good / fair / poor from the loss fraction and the round-trip time."""
    for name, max_loss, max_rtt in LEVELS:
        if loss <= max_loss and (rtt_ms is None or rtt_ms <= max_rtt):
            return name
    return "poor"


@dataclass
class _Track:
    loss: float
    rtt_ms: float | None
    level: str


class QualityTracker:
    """Smooths each participant's loss and RTT, and changes a level only past a margin.

    A loss measured over one interval is noisy (a receiver report covers a
    few dozen packets): at a steady 5 % it read anywhere from 0 to 15 % and the
    indicator swung between good, fair and poor.  Figures are averaged
    (exponentially, weight `alpha` for the newest) and a better level is only
    taken once the averages are below its limits by `margin` (e.g. loss under
    0.8 × 2 %); a worse one at once, as the user notices it at once.
    """

    def __init__(self, alpha: float = 0.2, margin: float = 0.8) -> None:
        self.alpha = alpha
        self.margin = margin
        self._tracks: dict[str, _Track] = {}

    def update(self, key: str, loss: float, rtt_ms: float | None) -> str:
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(loss, rtt_ms, quality(loss, rtt_ms))
            return track.level
        a = self.alpha
        track.loss = a * loss + (1 - a) * track.loss
        if rtt_ms is not None:
            track.rtt_ms = rtt_ms if track.rtt_ms is None else a * rtt_ms + (1 - a) * track.rtt_ms
        now = quality(track.loss, track.rtt_ms)
        if _ORDER[now] > _ORDER[track.level]:
            track.level = now
        elif _ORDER[now] < _ORDER[track.level]:
            rtt = track.rtt_ms / self.margin if track.rtt_ms is not None else None
            clear = quality(track.loss / self.margin, rtt)
            if _ORDER[clear] < _ORDER[track.level]:
                track.level = clear
        return track.level

    def forget(self, keep: set[str]) -> None:
        """Drop the tracks of participants not in `keep` (gone from every room)."""
        for key in set(self._tracks) - keep:
            del self._tracks[key]
