"""The API's services in embedded mode over a test's own SQLite database, for tests that
serve the real app: the session's handbook store answers jobs, and the index routes get a
store of their own, so nothing a test builds, promotes or rolls back moves the shared alias."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from api.app import ApiServices
from cli.wiring import build_services
from ragline.config import RaglineConfig
from ragline.db import create_schema, make_engine
from ragline.jobs import JobRepository
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.runtime import Core, build_index_manager, build_pipeline
from ragline.settings import Settings
from tests.support.environment import REPO
from workers.broker import make_broker


@contextmanager
def embedded_services(
    config: RaglineConfig, directory: Path, handbook_store: KnowledgeStore, embedder: Embedder
) -> Iterator[ApiServices]:
    """services.jobs.engine is the test's database; both it and the index store are closed
    on exit."""
    engine = make_engine(f"sqlite:///{directory / 'ragline.db'}")
    create_schema(engine)
    core = Core(
        settings=Settings(data_dir=directory, prompts_dir=REPO / "prompts"),
        config=config,
        engine=engine,
        jobs=JobRepository(engine),
    )
    services = build_services(
        core,
        make_broker(None),
        store=handbook_store,
        pipeline=build_pipeline(core, handbook_store, embedder),
        worker_threads=2,
    )
    own_store = KnowledgeStore.open(path=directory / "qdrant")
    services.index = build_index_manager(core, own_store, embedder)
    try:
        yield services
    finally:
        own_store.close()
        engine.dispose()
