"""`ragline serve`: the HTTP API; in embedded mode also the workers, in one process."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from api.app import create_app
from api.wiring import build_services
from ragline.knowledge.store import KnowledgeStore
from ragline.observability import configure_logging
from ragline.pipeline.runner import Pipeline
from ragline.runtime import build_core, build_pipeline, load_embedder, open_store
from ragline.settings import load_settings
from workers.broker import make_broker


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (RAGLINE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (RAGLINE_PORT)")] = None,
) -> None:
    """Serve the API. Without RAGLINE_REDIS_URL (embedded mode) it also answers jobs."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    core = build_core(settings)
    broker = make_broker(settings.redis_url)
    store: KnowledgeStore | None = None
    pipeline: Pipeline | None = None
    if settings.embedded:
        store = open_store(settings)
        pipeline = build_pipeline(core, store, load_embedder(core.config))
    elif settings.qdrant_url:
        # A Qdrant server can have many clients; local mode belongs to the worker process.
        store = open_store(settings)
    services = build_services(
        core, broker, store=store, pipeline=pipeline, worker_threads=settings.worker_threads
    )
    bind_host = host or settings.host
    bind_port = port or settings.port
    typer.echo(
        f"ragline {services.mode} mode: http://{bind_host}:{bind_port}  (OpenAPI at /docs)\n"
        f"  submit: curl -s -X POST http://{bind_host}:{bind_port}/v1/jobs "
        "-H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' "
        '-d \'{"question": "How many days of annual leave do I get?", '
        '"user_id": "demo-user", "feature": "handbook"}\'\n'
        f"  result: curl -s http://{bind_host}:{bind_port}/v1/jobs/<id>",
        err=True,
    )
    try:
        uvicorn.run(
            create_app(services),
            host=bind_host,
            port=bind_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    finally:
        if store is not None:
            store.close()
        core.close()
