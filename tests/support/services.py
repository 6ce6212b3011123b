"""A test's services, from the composition root as every process gets them: bootstrap with
overrides for what the session shares (the embedding model, the handbook store) and a
folder of the test's own (its SQLite database, an index store of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from api.app import ApiServices
from cli.wiring import http_services
from ragline.bootstrap import Mode, Overrides, Services, opened
from ragline.config import RaglineConfig
from ragline.knowledge.catalog import promoted
from ragline.knowledge.edge_store import EdgeStore
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.settings import Settings
from tests.support.environment import REPO
from workers.broker import make_broker, sender


def settings_for(directory: Path, **fields: Any) -> Settings:
    """Settings for a test's folder, blind to deployment variables in the environment."""
    values: dict[str, Any] = {
        "data_dir": directory,
        "prompts_dir": REPO / "prompts",
        "scorers_dir": REPO / "scorers",
        "database_url": None,
        "redis_url": None,
        "qdrant_url": None,
        "model_base_url": None,
        "otlp_endpoint": None,
        # The tests' own tenants: "platform" operates the shared knowledge base; builds
        # over the API read from the test's folder.
        "platform_account": "platform",
        "source_roots": (directory,),
        **fields,
    }
    return Settings(**values)


@contextmanager
def bootstrapped(
    mode: Mode,
    directory: Path,
    config: RaglineConfig,
    *,
    settings: Settings | None = None,
    **overrides: Any,
) -> Iterator[Services]:
    """bootstrap(settings_for(directory), mode, Overrides(config=config, **overrides))."""
    given = Overrides(config=config, **overrides)
    with opened(settings or settings_for(directory), mode, given) as services:
        yield services


@dataclass
class EmbeddedApp:
    services: Services
    api: ApiServices  # what create_app serves


@contextmanager
def embedded_app(
    config: RaglineConfig,
    directory: Path,
    store: KnowledgeStore,
    embedder: Embedder,
    *,
    engine: Engine | None = None,
    settings: Settings | None = None,
    own_index: bool = True,
) -> Iterator[EmbeddedApp]:
    """`ragline serve` in embedded mode over the test's database (engine, else SQLite in
    directory), answering from `store`. own_index: the index routes get a store of their
    own in directory, so nothing a test builds, promotes or rolls back moves the shared
    alias."""
    broker = make_broker(None)
    with bootstrapped(
        Mode.EMBEDDED,
        directory,
        config,
        settings=settings,
        engine=engine,
        store=store,
        embedder=embedder,
        send=sender(broker),
    ) as services:
        api = http_services(services, broker, worker_threads=2)
        if not own_index:
            yield EmbeddedApp(services, api)
            return
        own_store = EdgeStore.open(directory / "index", promoted(services.engine))
        try:
            with bootstrapped(
                Mode.INDEX,
                directory,
                config,
                settings=settings,
                engine=services.engine,
                store=own_store,
                embedder=embedder,
            ) as indexing:
                api.index = indexing.index
                yield EmbeddedApp(services, api)
        finally:
            own_store.close()


@contextmanager
def embedded_services(
    config: RaglineConfig, directory: Path, handbook_store: KnowledgeStore, embedder: Embedder
) -> Iterator[ApiServices]:
    """The API's services in embedded mode; services.core.engine is the test's database."""
    with embedded_app(config, directory, handbook_store, embedder) as app:
        yield app.api
