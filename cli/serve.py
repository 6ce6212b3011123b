"""`ragline serve`: the HTTP API; in embedded mode also the workers, in one process."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from api.app import create_app
from cli.wiring import build_services
from ragline.accounts import Accounts, ensure_demo_key
from ragline.knowledge.store import KnowledgeStore
from ragline.observability import configure_logging
from ragline.pipeline.runner import Pipeline
from ragline.runtime import build_core, build_pipeline, load_embedder, open_store
from ragline.settings import Settings, load_settings
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
    base = f"http://{bind_host}:{bind_port}"
    typer.echo(banner(services.mode, base, settings, services.accounts), err=True)
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


DEMO_QUESTION = (
    '{"question": "How many days of annual leave do I get?", '
    '"user_id": "demo-user", "feature": "handbook"}'
)


def banner(mode: str, base: str, settings: Settings, accounts: Accounts) -> str:
    """What `make run` prints: where the server is and, in embedded mode, a ready key."""
    lines = [f"ragline {mode} mode: {base}  (OpenAPI at {base}/docs)"]
    if settings.embedded and settings.demo_key:
        key = ensure_demo_key(accounts, settings.data_dir / "demo-key")
        auth = '-H "Authorization: Bearer $RAGLINE_KEY"'
        lines += [
            f"  demo key (account 'demo', every role; kept in {settings.data_dir / 'demo-key'}):",
            f"    export RAGLINE_KEY={key}",
            f"  submit: curl -s -X POST {base}/v1/jobs {auth} -H 'Content-Type: application/json' "
            f"-H 'Idempotency-Key: demo-1' -d '{DEMO_QUESTION}'",
            f"  result: curl -s {auth} {base}/v1/jobs/<id>",
        ]
    return "\n".join(lines)
