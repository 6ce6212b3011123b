"""`ragline serve`: the HTTP API; in embedded mode also the workers, in one process."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from cli.wiring import http_services
from ragline.accounts import Accounts, ensure_demo_key
from ragline.bootstrap import Mode, Overrides, bootstrap
from ragline.errors import ConfigError
from ragline.observability import configure_logging
from ragline.settings import Settings, load_settings
from workers.broker import make_broker, sender


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (RAGLINE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (RAGLINE_PORT)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="API processes on the port (RAGLINE_API_WORKERS)"),
    ] = None,
) -> None:
    """Serve the API. Without RAGLINE_REDIS_URL (embedded mode) it also answers jobs.
    Deployed, --workers N runs N uvicorn worker processes sharing the port."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    bind_host = host or settings.host
    bind_port = port or settings.port
    processes = workers or settings.api_workers
    if processes > 1 and settings.embedded:
        raise ConfigError(
            "embedded mode runs in one process (its queue, workers and local index live "
            "there): --workers needs the deployed mode (RAGLINE_REDIS_URL)"
        )
    # Before anything is built or printed: no banner and no demo key for a server that
    # cannot start.
    refuse_taken_port(bind_host, bind_port)
    if processes > 1:
        typer.echo(f"ragline deployed mode: http://{bind_host}:{bind_port}", err=True)
        # Each worker process builds its own services (deployed_app); the parent only
        # supervises them.
        uvicorn.run(
            "cli.serve:deployed_app",
            factory=True,
            workers=processes,
            host=bind_host,
            port=bind_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=forwarded_allow_ips(settings),
        )
        return
    broker = make_broker(settings.redis_url)
    # Embedded mode is assembled here: the workers run inside this process.
    mode = Mode.EMBEDDED if settings.embedded else Mode.SERVER
    services = bootstrap(settings, mode, Overrides(send=sender(broker)))
    try:
        http = http_services(services, broker, worker_threads=settings.worker_threads)
    except BaseException:
        services.close()
        raise
    base = f"http://{bind_host}:{bind_port}"
    typer.echo(banner(http.mode, base, settings, services.accounts), err=True)
    try:
        uvicorn.run(
            create_app(http),
            host=bind_host,
            port=bind_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=forwarded_allow_ips(settings),
        )
    finally:
        services.close()


def forwarded_allow_ips(settings: Settings) -> str | None:
    """uvicorn believes X-Forwarded-For from loopback by default; ragline believes it only
    from RAGLINE_TRUSTED_PROXIES (so a limit keyed on the client's address holds), and
    with none it turns proxy headers off altogether."""
    return ",".join(settings.trusted_proxies) or None


def deployed_app() -> FastAPI:
    """One uvicorn worker process's application (`ragline serve --workers N`): its own
    services, closed when the server shuts it down."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    broker = make_broker(settings.redis_url)
    services = bootstrap(settings, Mode.SERVER, Overrides(send=sender(broker)))
    try:
        http = http_services(services, broker)
    except BaseException:
        services.close()
        raise
    http.background.insert(0, Closing(services.close))  # stopped last
    return create_app(http)


@dataclass(frozen=True)
class Closing:
    """Closes what bootstrap opened when the application stops."""

    close: Callable[[], None]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.close()


def refuse_taken_port(host: str, port: int) -> None:
    """ConfigError when another process already listens on host:port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({error.strerror}): another server is "
                "there; stop it or choose another port (--port or RAGLINE_PORT)"
            ) from None


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
