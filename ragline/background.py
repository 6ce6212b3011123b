"""One loop for the work a process does beside answering: the sweeper's passes and the
deliverer's sends, each on its own daemon thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger("ragline.background")


class BackgroundLoop:
    """Calls `tick` every `interval_s` until stop(). With `drain`, a tick that reports more
    work (returns something truthy) is called again at once. A tick that raises is logged
    by class name (never its text, which may quote data) and retried next interval: the
    database may be down for a while."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        tick: Callable[[], object],
        *,
        drain: bool = False,
        join_timeout_s: float = 5.0,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._tick = tick
        self._drain = drain
        self._join_timeout_s = join_timeout_s
        self.stopping = threading.Event()  # set by stop(); long waits inside a tick use it
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                while self._tick() and self._drain and not self.stopping.is_set():
                    pass
            except Exception as error:
                log.warning("background_tick_failed", loop=self.name, error=type(error).__name__)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self._join_timeout_s)
