"""What every process needs, and nothing heavier: settings, the validated config and the
database. Short commands (`ragline keys create`) start from this alone; ragline.runtime
wires the rest (vector store, embedder, pipeline) on top."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from ragline.config import RaglineConfig, load_config
from ragline.db import create_schema, make_engine
from ragline.jobs import JobRepository
from ragline.settings import Settings


@dataclass
class Core:
    """What every process needs: settings, the validated config and the database."""

    settings: Settings
    config: RaglineConfig
    engine: Engine
    jobs: JobRepository

    def close(self) -> None:
        self.engine.dispose()


def build_core(settings: Settings, config: RaglineConfig | None = None) -> Core:
    config = config or load_config(settings.config)
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return Core(settings=settings, config=config, engine=engine, jobs=JobRepository(engine))
