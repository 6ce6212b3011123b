"""Shared fixtures. Real services only: Redis, PostgreSQL (and SQLite), Qdrant local mode,
the real MiniLM model (loaded once per session) and a real HTTP model server.

Locally a missing Redis or PostgreSQL skips its tests; under CI=true it fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from ragline import secret_box
from ragline.bootstrap import Mode, Services
from ragline.config import RaglineConfig, load_config
from ragline.db import make_engine
from ragline.errors import DatabaseUnavailable
from ragline.knowledge.catalog import promoted
from ragline.knowledge.edge_store import EdgeStore
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.knowledge.versions import IndexManager
from ragline.schema import create_schema
from tests.support.environment import (
    HANDBOOK,
    POSTGRES_URL,
    REDIS_URL,
    REPO,
    TEST_SECRET_KEY,
    unavailable,
)
from tests.support.fake_model import FakeModelServer
from tests.support.services import EmbeddedApp, bootstrapped, embedded_app, settings_for

# Before any test: repositories used without bootstrap seal with it, and every Settings the
# tests build reads it from the environment (a developer's own key is not used here).
os.environ["RAGLINE_SECRET_KEY"] = TEST_SECRET_KEY
secret_box.configure(secret_box.KeyRing.of(TEST_SECRET_KEY))


@pytest.fixture(scope="session")
def repo_config() -> RaglineConfig:
    return load_config(REPO / "ragline.yaml")


@pytest.fixture(scope="session")
def embedder(repo_config: RaglineConfig) -> Embedder:
    return Embedder(repo_config.knowledge.embedding_model)


def _sqlite_engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    return engine


_postgres_engine: Engine | None = None


def _postgres() -> Engine:
    global _postgres_engine
    if _postgres_engine is None:
        engine = make_engine(POSTGRES_URL)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DatabaseUnavailable as error:
            unavailable("PostgreSQL", error)
        _postgres_engine = engine
    return _postgres_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, empty schema on each backend."""
    if request.param == "sqlite":
        engine = _sqlite_engine(tmp_path / "ragline.db")
        yield engine
        engine.dispose()
        return
    engine = _postgres()
    SQLModel.metadata.drop_all(engine)
    create_schema(engine)
    yield engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _sqlite_engine(tmp_path / "ragline.db")
    yield engine
    engine.dispose()


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as error:
        unavailable("Redis", error)
    client.flushdb()
    client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def handbook_store(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[KnowledgeStore]:
    """The demo handbook on the embedded engine (the default), built and promoted once per
    session. Read-only for tests."""
    root = tmp_path_factory.mktemp("handbook")
    engine = _sqlite_engine(root / "manifest.db")
    store = EdgeStore.open(root / "index", promoted(engine))
    manager = IndexManager(
        engine,
        store,
        embedder,
        repo_config.knowledge,
        alias=repo_config.assistant_pipeline.retrieval.source,
    )
    manager.promote(manager.build(HANDBOOK).version)
    yield store
    store.close()
    engine.dispose()


@pytest.fixture(scope="session")
def _model_server() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_model(_model_server: FakeModelServer) -> Iterator[FakeModelServer]:
    _model_server.reset()
    yield _model_server
    _model_server.reset()


@pytest.fixture
def embedded(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    tmp_path: Path,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
) -> Iterator[EmbeddedApp]:
    """`ragline serve` in embedded mode over the test's SQLite database, answering from the
    session's handbook (its index routes share that store: read-only tests only)."""
    with embedded_app(
        repo_config, tmp_path, handbook_store, embedder, engine=sqlite_engine, own_index=False
    ) as app:
        yield app


@pytest.fixture
def modelled(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    fake_model: FakeModelServer,
    tmp_path: Path,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
) -> Iterator[Services]:
    """An embedded server's services whose openai_compatible models call the loopback
    model server; jobs are answered in the test's thread (admission queues nowhere)."""
    with bootstrapped(
        Mode.EMBEDDED,
        tmp_path,
        repo_config,
        settings=settings_for(tmp_path, model_base_url=fake_model.base_url),
        engine=sqlite_engine,
        store=handbook_store,
        embedder=embedder,
        send=lambda _job_id: None,
    ) as services:
        yield services
