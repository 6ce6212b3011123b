"""`ragline worker`: answering workers as a separate process on the Redis broker."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import prometheus_client
import typer

from ragline.errors import ConfigError
from ragline.observability import configure_logging
from ragline.runtime import build_core, build_pipeline, load_embedder, open_store
from ragline.settings import load_settings
from workers.broker import make_broker
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
    core = build_core(settings)
    store = open_store(settings)
    pipeline = build_pipeline(core, store, load_embedder(core.config))
    workers = AnsweringWorkers(
        core, make_broker(settings.redis_url), pipeline, threads=threads or settings.worker_threads
    )
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
        store.close()
        core.close()
