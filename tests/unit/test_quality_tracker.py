"""The quality indicator holds still under a steady network and still follows a real change."""

from __future__ import annotations

import random

from signaling.call.quality import QualityTracker, quality


def _steady_loss(rate: float, intervals: int, packets: int = 60, seed: int = 5) -> list[float]:
    # what one receiver report per interval reads at a steady loss rate: a few dozen packets each
    rng = random.Random(seed)
    return [sum(rng.random() < rate for _ in range(packets)) / packets for _ in range(intervals)]


def test_a_steady_five_percent_loss_shows_a_steady_fair() -> None:
    readings = _steady_loss(0.05, 150)
    raw = {quality(x, 120.0) for x in readings}
    assert raw == {"good", "fair", "poor"}  # what the indicator used to show, reading by reading
    tracker = QualityTracker()
    levels = [tracker.update("p", x, 120.0) for x in readings]
    assert set(levels[10:]) == {"fair"}, levels


def test_a_clean_network_shows_good_and_a_real_degradation_shows_at_once() -> None:
    tracker = QualityTracker()
    assert {tracker.update("p", x, 20.0) for x in _steady_loss(0.002, 50)} == {"good"}
    # the network breaks down: poor within two intervals
    assert "poor" in [tracker.update("p", 0.3, 20.0) for _ in range(2)]
    # and recovers: good again, after a few intervals, without passing through a swing back
    after = [tracker.update("p", 0.0, 20.0) for _ in range(20)]
    assert after[-1] == "good"
    changes = sum(1 for a, b in zip(after, after[1:]) if a != b)
    assert changes <= 2, after


def test_rtt_counts_and_participants_are_independent() -> None:
    tracker = QualityTracker()
    assert tracker.update("a", 0.0, 900.0) == "poor"
    assert tracker.update("b", 0.0, 30.0) == "good"
    tracker.forget({"b"})
    assert tracker.update("a", 0.0, 30.0) == "good"  # a fresh track: nothing carried over
