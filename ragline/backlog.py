"""The backlog bound at admission, without a COUNT(*) on every submission.

Counting queued jobs costs a database round trip (and grows with the backlog) on every
POST /v1/jobs, while the answer only matters near the bound. So: far below the bound, a
count at most `max_age_s` old plus what this process admitted since is enough; within
`margin` of the bound, or when that estimate says full, the queue is counted exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class BacklogGauge:
    def __init__(
        self, count: Callable[[], int], bound: int, max_age_s: float = 1.0, margin: float = 0.9
    ) -> None:
        self.count = count
        self.bound = bound
        self.max_age_s = max_age_s
        self.margin = margin
        self._lock = threading.Lock()
        self._estimate = 0
        self._counted_at = float("-inf")

    def depth(self) -> int:
        """The queue's depth, exact whenever it is close enough to the bound to matter."""
        with self._lock:
            fresh = time.monotonic() - self._counted_at < self.max_age_s
            if fresh and self._estimate < self.bound * self.margin:
                return self._estimate
        exact = self.count()
        with self._lock:
            self._estimate, self._counted_at = exact, time.monotonic()
        return exact

    def admitted(self) -> None:
        """One more job queued by this process since the last count."""
        with self._lock:
            self._estimate += 1
