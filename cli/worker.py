"""`ragline worker`: answering workers as a separate process on the Redis broker."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import prometheus_client
import typer

from ragline.bootstrap import Mode, Overrides, bootstrap
from ragline.errors import ConfigError
from ragline.observability import configure_logging
from ragline.settings import load_settings
from workers.broker import make_broker, sender
from workers.process import AnsweringWorkers


def worker(
    threads: Annotated[
        int | None, typer.Option(min=1, max=64, help="worker threads (RAGLINE_WORKER_THREADS)")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="serve Prometheus metrics on this port (all addresses)"
        ),
    ] = None,
) -> None:
    """Answer jobs from the Redis queue until SIGTERM/SIGINT, then finish those in flight."""
    settings = load_settings()
    if settings.embedded:
        raise ConfigError(
            "RAGLINE_REDIS_URL is not set: in embedded mode `ragline serve` runs the workers"
        )
    configure_logging(settings.log_level, settings.log_format)
    broker = make_broker(settings.redis_url)
    services = bootstrap(settings, Mode.WORKER, Overrides(send=sender(broker)))
    workers = AnsweringWorkers(services, broker, threads=threads or settings.worker_threads)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    if metrics_port is not None:
        prometheus_client.start_http_server(metrics_port)
    workers.start()
    try:
        stopping.wait()
    finally:
        workers.stop()
        services.close()
