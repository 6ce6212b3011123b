"""Environment settings: where things are (URLs, paths) and secrets. Prefix RAGLINE_.

Everything about behaviour lives in ragline.yaml (ragline.config); this module holds only
what differs between deployments. Nothing here is read at import time: call
`load_settings()` in a process's composition root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragline.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGLINE_", extra="ignore", frozen=True)

    config: Path = Field(Path("ragline.yaml"), description="path of the pipeline config")
    prompts_dir: Path = Path("prompts")
    scorers_dir: Path = Path("scorers")  # decision scorer artifacts (decision.scorer)
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    # Unset URLs mean embedded mode: SQLite and Qdrant local under data_dir, in-process broker.
    database_url: str | None = None
    redis_url: str | None = None
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    # Without a Qdrant URL, the knowledge base lives under data_dir: `edge` (Qdrant's engine
    # in process, data_dir/index, one sealed shard per version, read by every process; what
    # data_dir/qdrant holds is copied in once) or `qdrant-local` (Qdrant local mode,
    # data_dir/qdrant, one process at a time, exhaustive search).
    index_engine: Literal["edge", "qdrant-local"] = "edge"

    # The OpenAI-compatible endpoint (vLLM, Ollama, a vendor). Unset: the extractive provider.
    model_base_url: str | None = None
    model_api_key: SecretStr | None = None

    # Encrypts webhook secrets at rest (ragline/secret_box.py): a passphrase of 32 or more
    # characters, the same in every process. Unset: required with PostgreSQL; with SQLite
    # one is generated once into data_dir/secret-key. Rotating: the new one here, the old
    # ones in previous_secret_keys (JSON list) until a start has re-sealed everything.
    secret_key: SecretStr | None = None
    previous_secret_keys: tuple[SecretStr, ...] = ()
    # When set, GET /metrics needs `Authorization: Bearer <it>` (else it is open, like health).
    metrics_token: SecretStr | None = None

    # Optional OpenTelemetry export of each finished job's trace (OTLP/HTTP JSON), e.g.
    # http://otel-collector:4318; headers as key=value,key2=value2 (auth tokens).
    otlp_endpoint: str | None = None
    otlp_headers: SecretStr | None = None

    worker_threads: int = Field(4, gt=0, le=64)
    # `ragline serve` processes (uvicorn workers) on one port; deployed mode only.
    api_workers: int = Field(1, gt=0, le=64)
    # How long a process reuses an API key it has just checked (0: read it every request).
    # A key revoked from another process stops working within this; in its own, at once.
    key_cache_ms: int = Field(1000, ge=0, le=60_000)
    # Embedded mode only: create (once) and print a demo key with every role.
    demo_key: bool = True
    # Swagger UI at /docs (and ReDoc at /redoc) load their scripts from a CDN: a third
    # party's code on the admin surface, so off unless asked for (`make run` asks).
    api_docs: bool = False

    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDR
    # networks, JSON list). Empty: none, so the address every limit keys on is the
    # connection's own, which a client cannot rotate by writing a header.
    trusted_proxies: tuple[str, ...] = ()

    # The knowledge base is the platform's, shared by every account (documents are scoped
    # by group): building, promoting and rolling it back over the API takes an admin key or
    # an `indexer` key of this account. A tenant's indexer key is refused.
    platform_account: str = "demo"
    # The folders `POST /v1/index/builds` may read on the server, e.g. ["/documents"] (JSON
    # in RAGLINE_SOURCE_ROOTS); relative ones are resolved against the working directory.
    # A folder outside them is refused (403) without echoing or listing it.
    source_roots: tuple[Path, ...] = (Path("examples"),)

    @property
    def embedded(self) -> bool:
        """One process serves the API and runs the workers with an in-process broker."""
        return self.redis_url is None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ragline.db').resolve()}"

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def edge_path(self) -> Path:
        return self.data_dir / "index"


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(
            f"RAGLINE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise ConfigError(f"invalid environment: {problems}") from None
