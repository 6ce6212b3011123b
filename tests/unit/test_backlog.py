"""The backlog gauge answers from a recent count far below the bound and counts exactly
near it, so the bound holds while most submissions skip the COUNT(*)."""

from __future__ import annotations

from ragline.backlog import BacklogGauge


class Queue:
    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.counted = 0

    def count(self) -> int:
        self.counted += 1
        return self.depth


def test_far_below_the_bound_a_fresh_count_is_reused() -> None:
    queue = Queue(10)
    gauge = BacklogGauge(queue.count, bound=1000, max_age_s=60)
    assert gauge.depth() == 10
    for _ in range(5):
        gauge.admitted()
    assert gauge.depth() == 15  # the count plus this process's admissions
    assert queue.counted == 1


def test_near_the_bound_every_check_counts_exactly() -> None:
    queue = Queue(95)
    gauge = BacklogGauge(queue.count, bound=100, max_age_s=60)
    assert gauge.depth() == 95
    queue.depth = 20  # drained (or deleted) meanwhile
    assert gauge.depth() == 20
    assert queue.counted == 2


def test_an_estimate_that_reaches_the_margin_is_checked() -> None:
    queue = Queue(80)
    gauge = BacklogGauge(queue.count, bound=100, max_age_s=60)
    gauge.depth()
    for _ in range(10):
        gauge.admitted()  # estimate 90: at the margin
    queue.depth = 101
    assert gauge.depth() == 101
    assert queue.counted == 2


def test_an_old_count_is_refreshed() -> None:
    queue = Queue(1)
    gauge = BacklogGauge(queue.count, bound=100, max_age_s=0.0)
    gauge.depth()
    queue.depth = 7
    assert gauge.depth() == 7
