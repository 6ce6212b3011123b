"""The composition root: every process, every command and every test that runs the product
gets its long-lived objects from `bootstrap`, once, at start-up. Which objects a process
needs is its Mode; what it brings instead of what the settings describe (a test's database,
the session's embedding model, the broker's send) is its Overrides. Nothing here runs at
import time, and nothing is wired anywhere else.

The broker itself (dramatiq) stays outside the core: processes that queue jobs pass its
`send` in Overrides."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import httpx
import structlog
from sqlalchemy.engine import Engine

from ragline import prompt_registry, secret_box
from ragline.accounts import Accounts
from ragline.admission import Admission
from ragline.budget import BudgetBook, Spending
from ragline.cache.answers import AnswerCache
from ragline.config import ModelSpec, RaglineConfig, load_config
from ragline.db import make_engine
from ragline.decision.scorer import DecisionScorer
from ragline.delivery import Deliverer
from ragline.dispatch import BackgroundDispatcher, Send
from ragline.errors import ConfigError
from ragline.guardrails.layer import GuardrailLayer
from ragline.jobs import JobRepository
from ragline.knowledge.catalog import promoted
from ragline.knowledge.edge_store import EdgeStore
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.local_import import import_local_versions
from ragline.knowledge.store import KnowledgeStore
from ragline.knowledge.versions import IndexManager
from ragline.observability import install_log_scrubber
from ragline.otlp import OtlpExporter, parse_headers
from ragline.pipeline.generate import ChosenModel, Generator
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.providers.extractive import ExtractiveGenerator
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from ragline.pipeline.retrieve import Retriever
from ragline.pipeline.runner import Pipeline
from ragline.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from ragline.retention import Retention
from ragline.review import ReviewQueue
from ragline.schema import prepare
from ragline.settings import Settings
from ragline.sweeper import Sweeper

log = structlog.get_logger("ragline.bootstrap")

T = TypeVar("T")


class Mode(StrEnum):
    """What a process does, and so what it is given."""

    MIGRATE = "migrate"  # `ragline db`: the database only, whatever its schema revision
    COMMAND = "command"  # a short command (keys, accounts, usage, prompts, eval list)
    INDEX = "index"  # the indexer: + the vector store (the embedder loads when it builds)
    EVALUATE = "evaluate"  # eval run, replay, calibrate, the promote gate: + the embedder
    WORKER = "worker"  # `ragline worker`: + the pipeline and the sweeper
    SERVER = "server"  # deployed `ragline serve`: admission; the store if it is a server
    EMBEDDED = "embedded"  # `ragline serve` with the workers inside: all of the above

    @property
    def answers(self) -> bool:
        return self in (Mode.WORKER, Mode.EMBEDDED)

    @property
    def admits(self) -> bool:
        return self in (Mode.SERVER, Mode.EMBEDDED)

    @property
    def embeds(self) -> bool:
        return self in (Mode.EVALUATE, Mode.WORKER, Mode.EMBEDDED)


@dataclass(frozen=True)
class Overrides:
    """What a caller brings instead of what the settings describe. Whatever is brought is
    the caller's to close; whatever bootstrap opens, Services.close() closes."""

    config: RaglineConfig | None = None
    engine: Engine | None = None
    store: KnowledgeStore | None = None
    embedder: Embedder | None = None
    scorer: DecisionScorer | None = None
    http: httpx.Client | None = None
    send: Send | None = None  # how jobs reach the queue (admission, sweeper)


@dataclass(frozen=True)
class Services:
    """Every long-lived object of one process. Optional ones exist only in the modes that
    need them (see Mode)."""

    mode: Mode
    settings: Settings
    config: RaglineConfig
    engine: Engine
    jobs: JobRepository
    accounts: Accounts
    budgets: BudgetBook
    review: ReviewQueue
    deliverer: Deliverer
    http: httpx.Client  # one pool for the model provider and webhook deliveries
    store: KnowledgeStore | None = None
    embedder: Embedder | None = None
    index: IndexManager | None = None
    guardrails: GuardrailLayer | None = None
    admission: Admission | None = None
    limiter: RateLimiter | None = None
    pipeline: Pipeline | None = None
    sweeper: Sweeper | None = None
    exporter: OtlpExporter | None = None
    _closers: tuple[Callable[[], None], ...] = field(default=(), repr=False)

    def need_store(self) -> KnowledgeStore:
        return _present(self.store, f"{self.mode} mode has no vector store")

    def need_embedder(self) -> Embedder:
        return _present(self.embedder, f"{self.mode} mode loads no embedding model")

    def need_guardrails(self) -> GuardrailLayer:
        return _present(self.guardrails, f"{self.mode} mode runs no guardrails")

    def need_pipeline(self) -> Pipeline:
        return _present(self.pipeline, f"{self.mode} mode answers no jobs")

    def close(self) -> None:
        """Close what bootstrap opened, last opened first; what Overrides brought stays."""
        for close in reversed(self._closers):
            close()


def _present(value: T | None, missing: str) -> T:
    if value is None:
        raise RuntimeError(missing)
    return value


@contextmanager
def opened(
    settings: Settings, mode: Mode, overrides: Overrides | None = None
) -> Iterator[Services]:
    """bootstrap(...) for as long as the block runs, then closed."""
    services = bootstrap(settings, mode, overrides)
    try:
        yield services
    finally:
        services.close()


def bootstrap(settings: Settings, mode: Mode, overrides: Overrides | None = None) -> Services:
    """The objects `mode` needs, built once. Raises ConfigError (bad config, scorer or
    OTLP headers), StoreBusy (the local store is open in another process) or
    DatabaseUnavailable, after closing whatever it had opened."""
    given = overrides or Overrides()
    closers: list[Callable[[], None]] = []
    try:
        return _assemble(settings, mode, given, closers)
    except BaseException:
        for close in reversed(closers):
            close()
        raise


def _key_ring(settings: Settings, engine: Engine) -> secret_box.KeyRing:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    return secret_box.key_ring_for(
        key or None,
        [previous.get_secret_value() for previous in settings.previous_secret_keys],
        data_dir=settings.data_dir,
        sqlite=engine.dialect.name == "sqlite",
    )


def _assemble(
    settings: Settings, mode: Mode, given: Overrides, closers: list[Callable[[], None]]
) -> Services:
    config = given.config or load_config(settings.config)
    engine = given.engine
    if engine is None:
        engine = make_engine(settings.resolved_database_url)
        closers.append(engine.dispose)
    if mode is not Mode.MIGRATE:
        # One process owns an embedded database: it upgrades it; the others refuse to run
        # on a schema older than the code (`ragline db upgrade`).
        prepare(engine, upgrade=mode is Mode.EMBEDDED)
        secret_box.configure(_key_ring(settings, engine))
        sealed = secret_box.reseal(engine)
        if sealed:
            log.info("webhook_secrets_sealed", accounts=sealed)
    http = given.http
    if http is None:
        http = httpx.Client(follow_redirects=False)
        closers.append(http.close)
    store = given.store
    # A Qdrant server and the edge engine's sealed shards have many readers; local mode has
    # one owner, so a deployed API server leaves it to the worker.
    shared = bool(settings.qdrant_url) or settings.index_engine == "edge"
    wants_store = mode not in (Mode.MIGRATE, Mode.COMMAND) and (mode is not Mode.SERVER or shared)
    if store is None and wants_store:
        store = open_store(settings, engine)
        closers.append(store.close)
    if mode.answers and isinstance(store, EdgeStore):
        closers.append(store.follow(config.assistant_pipeline.retrieval.source))
    embedder = given.embedder
    if embedder is None and mode.embeds:
        embedder = Embedder(config.knowledge.embedding_model)
    guardrails = None
    if mode.embeds or mode.admits:
        guardrails = GuardrailLayer(config.assistant_pipeline.guardrails, embedder)
        # Chosen here, once per process: from now on every log line is scrubbed too.
        install_log_scrubber(guardrails.scrub)
    exporter = _exporter(settings) if mode.answers else None  # traces of answered jobs
    if exporter is not None:
        closers.append(exporter.close)
    index = None
    if store is not None and mode is not Mode.SERVER:
        index = index_manager(engine, config, store, embedder)
    services = Services(
        mode=mode,
        settings=settings,
        config=config,
        engine=engine,
        jobs=JobRepository(engine),
        accounts=Accounts(engine, key_cache_s=settings.key_cache_ms / 1000),
        budgets=BudgetBook(engine, config.budgets),
        review=ReviewQueue(engine, config.review),
        deliverer=Deliverer(engine, config.deliveries, client=http),
        http=http,
        store=store,
        embedder=embedder,
        index=index,
        guardrails=guardrails,
        exporter=exporter,
    )
    jobs, budgets = services.jobs, services.budgets
    if mode.answers:
        services = replace(
            services,
            pipeline=assemble_pipeline(
                services, budgets, given.scorer or load_scorer(settings, config), cache=True
            ),
            sweeper=Sweeper(
                jobs,
                _needs_send(given, mode),
                interval_s=config.jobs.sweep_interval_ms / 1000,
                requeue_after=timedelta(milliseconds=config.jobs.requeue_after_ms),
                review=services.review,
                budgets=budgets,
                deadline_grace=timedelta(milliseconds=config.jobs.deadline_grace_ms),
                retention=Retention(engine, config.retention),
            ),
        )
    if mode.admits:
        generation_model = config.assistant_pipeline.generation.model
        limiter: RateLimiter = LocalRateLimiter(config.rate_limits)
        if settings.redis_url:
            redis_limiter = RedisRateLimiter(settings.redis_url, config.rate_limits)
            closers.append(redis_limiter.close)
            limiter = redis_limiter
        # Messages leave after the response; closing sends what is still queued.
        dispatcher = BackgroundDispatcher(jobs, _needs_send(given, mode))
        closers.append(dispatcher.close)
        services = replace(
            services,
            admission=Admission(
                config,
                jobs,
                dispatcher,
                budgets,
                effective_spec(settings, config, generation_model),
                services.need_guardrails(),
            ),
            limiter=limiter,
        )
    return replace(services, _closers=tuple(closers))


def _needs_send(given: Overrides, mode: Mode) -> Send:
    if given.send is None:
        raise ValueError(f"{mode} mode queues jobs: pass the broker's send in Overrides")
    return given.send


def open_store(settings: Settings, engine: Engine) -> KnowledgeStore:
    """A Qdrant server if one is configured; else the embedded engine the settings name.
    The edge engine's alias is the database's last promotion; versions Qdrant local mode
    holds in the data folder are copied into it the first time."""
    if settings.qdrant_url is None and settings.index_engine == "edge":
        store = EdgeStore.open(settings.edge_path, promoted(engine))
        import_local_versions(settings.qdrant_path, store)
        return store
    # Imported here: qdrant-client costs ~90 MB that processes on the edge engine never need.
    from ragline.knowledge.qdrant_store import QdrantStore

    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return QdrantStore.open(url=settings.qdrant_url, path=settings.qdrant_path, api_key=api_key)


def index_manager(
    engine: Engine, config: RaglineConfig, store: KnowledgeStore, embedder: Embedder | None
) -> IndexManager:
    """The index versions behind the configured retrieval alias; without an embedder the
    model loads the first time a build needs it."""
    model = config.knowledge.embedding_model
    return IndexManager(
        engine,
        store,
        embedder,
        config.knowledge,
        alias=config.assistant_pipeline.retrieval.source,
        retrieval_mode=config.assistant_pipeline.retrieval.mode,
        load_embedder=lambda: Embedder(model),
    )


def _exporter(settings: Settings) -> OtlpExporter | None:
    if not settings.otlp_endpoint:
        return None
    headers = settings.otlp_headers
    try:
        parsed = parse_headers(headers.get_secret_value() if headers else None)
    except ValueError as error:
        raise ConfigError(f"RAGLINE_OTLP_HEADERS: {error}") from None
    return OtlpExporter(settings.otlp_endpoint, parsed)


def effective_spec(settings: Settings, config: RaglineConfig, name: str) -> ModelSpec:
    """The models-table entry as it will run: an openai_compatible model with no endpoint
    configured (RAGLINE_MODEL_BASE_URL unset) runs as the extractive provider, which costs
    nothing; the model id stored on each job is the one that actually answered."""
    spec = config.models[name]
    if spec.provider == "openai_compatible" and not settings.model_base_url:
        return ModelSpec(provider="extractive")
    return spec


def choose_model(
    settings: Settings,
    config: RaglineConfig,
    name: str,
    embedder: Embedder,
    http: httpx.Client | None = None,
) -> ChosenModel:
    spec = effective_spec(settings, config, name)
    if spec.provider == "openai_compatible":
        assert settings.model_base_url is not None
        key = settings.model_api_key
        generator: Generator = OpenAICompatibleGenerator(
            spec,
            settings.model_base_url,
            api_key=key.get_secret_value() if key else None,
            client=http,
        )
    else:
        if config.models[name].provider != "extractive":
            log.warning("model_endpoint_missing", model=name, using="extractive")
        generator = ExtractiveGenerator(embedder)
    return ChosenModel(name=name, spec=spec, generator=generator)


def scorer_path(settings: Settings, config: RaglineConfig, name: str | None = None) -> Path:
    """A scorer by name (scorers_dir/NAME.json) or by path (anything with a / or .json)."""
    name = name or config.decision.scorer
    if "/" in name or name.endswith(".json"):
        return Path(name)
    return settings.scorers_dir / f"{name}.json"


def load_scorer(
    settings: Settings, config: RaglineConfig, name: str | None = None
) -> DecisionScorer:
    """The decision scorer, checked against the embedding model; any problem stops the
    process (ConfigError) rather than letting jobs through unscored."""
    return DecisionScorer.load(
        scorer_path(settings, config, name), config.knowledge.embedding_model
    )


@dataclass(frozen=True)
class Swap:
    """What a variant answers with instead of the configured: another config (top_k), a
    models-table name, a recorded prompt version, an index version's collection."""

    config: RaglineConfig | None = None
    model: str | None = None
    prompt: PromptTemplate | None = None
    collection: str | None = None


def assemble_pipeline(
    services: Services,
    budgets: Spending,
    scorer: DecisionScorer,
    swap: Swap = Swap(),
    cache: bool = False,
) -> Pipeline:
    """The one place a Pipeline is put together: the production one (bootstrap) and the
    variants that evaluations and replays run (ragline/variant.py), so both answer with the
    same stages. cache: with the answer cache (production only: evaluations and replays
    measure the model)."""
    settings, config = services.settings, swap.config or services.config
    embedder = services.need_embedder()
    generation = config.assistant_pipeline.generation
    prompt = swap.prompt
    if prompt is None:
        prompt = PromptTemplate.load(settings.prompts_dir, generation.prompt)
        prompt_registry.record(services.engine, prompt)
    downgrade = config.budgets.downgrade_model
    fallback = generation.fallback_model  # skipped by the runner if it is the model itself

    def chosen(name: str) -> ChosenModel:
        return choose_model(settings, config, name, embedder, services.http)

    return Pipeline(
        config=config,
        jobs=services.jobs,
        retriever=Retriever(
            embedder, services.need_store(), config.assistant_pipeline.retrieval.mode
        ),
        model=chosen(swap.model or generation.model),
        prompt=prompt,
        budgets=budgets,
        guardrails=services.need_guardrails(),
        downgrade=chosen(downgrade) if downgrade else None,
        collection=swap.collection,
        fallback=chosen(fallback) if fallback else None,
        scorer=scorer,
        exporter=services.exporter,
        cache=AnswerCache(services.engine, config.cache, embedder) if cache else None,
    )
