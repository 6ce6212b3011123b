"""Queue throughput: ragline's job path against a raw dramatiq drain, measured in one run.

    .venv/bin/python bench/queue_throughput.py [--jobs 2000] [--full-jobs 100] [--threads 4]
        [--database postgresql+psycopg://127.0.0.1:5432/ragline_bench] [--index-dir DIR]
        [--docs 4000]

On a private redis-server (a free port, nothing on disk) and the same dramatiq Worker
settings (threads, worker_timeout) for every phase:
1. raw: N no-op messages enqueued, then drained by a dramatiq Worker;
2. ragline, stages disabled: N jobs stored as the API stores them, their answer_job
   messages enqueued, then drained by ragline's actor: claim (compare-and-set), finish
   (outcome, review and delivery rows in one transaction), everything but the stages;
   target >= 50% of raw;
3. ragline, whole pipeline: the extractive provider on a ~10k-chunk index (the first 4,000
   SciFact abstracts, built once into data/bench-index in Qdrant local mode with its
   manifest beside it, and copied into the embedded engine's shard), SciFact claims as
   questions: on Qdrant local mode (before the embedded engine), then on the embedded
   engine with question embeddings one by one and micro-batched (the worker's default).
Rates are jobs per second; the ratios are the result (absolute rates vary by machine).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from scifact_data import scifact, scifact_queries  # bench/ is the script's path
from sqlalchemy import create_engine, func, text
from sqlmodel import Session, col, select

from ragline.accounts import Accounts
from ragline.bootstrap import Mode, Overrides, Services, bootstrap
from ragline.config import RaglineConfig, load_config
from ragline.jobs import Outcome
from ragline.knowledge.catalog import promoted
from ragline.knowledge.edge_store import EdgeStore
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.local_import import import_local_versions
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.store import KnowledgeStore
from ragline.knowledge.versions import IndexManager
from ragline.models import Job, JobStatus
from ragline.observability import configure_logging
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from ragline.schema import create_schema
from ragline.settings import Settings
from workers.actors import declare_answer_actor
from workers.broker import QUEUE_NAME, sender

REPO = Path(__file__).resolve().parent.parent
FINAL = [JobStatus.ANSWERED, JobStatus.ESCALATED, JobStatus.REJECTED, JobStatus.FAILED]
WORKER_TIMEOUT_MS = 100  # how long an idle worker thread waits for a message


@contextmanager
def private_redis() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        server = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
            ],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        try:
            yield url
        finally:
            server.terminate()
            server.wait(10)


def drain(broker: dramatiq.Broker, threads: int, done: Callable[[], bool]) -> float:
    """Start a Worker on already-enqueued messages; seconds until done() holds."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=WORKER_TIMEOUT_MS)
    started = time.perf_counter()
    worker.start()
    while not done():
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    worker.stop()
    return elapsed


def raw_drain(redis_url: str, count: int, threads: int) -> float:
    broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    broker.flush_all()
    processed = 0
    lock = threading.Lock()

    def noop(_job_id: str) -> None:
        nonlocal processed
        with lock:
            processed += 1

    actor = dramatiq.Actor(
        noop, broker=broker, actor_name="noop", queue_name=QUEUE_NAME, priority=0, options={}
    )
    for number in range(count):
        actor.send(f"{number:032x}")
    elapsed = drain(broker, threads, lambda: processed >= count)
    broker.close()
    return count / elapsed


def fresh_database(url: str) -> str:
    if url.startswith("sqlite"):
        return url
    base, name = url.rsplit("/", 1)
    admin = create_engine(f"{base}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return url


def stored_jobs(core: Services, questions: list[str], count: int) -> list[str]:
    accounts = Accounts(core.engine)
    account = accounts.create_account(f"bench{time.monotonic_ns() % 10**9}")
    ids = []
    for number in range(count):
        job, _ = core.jobs.submit(
            JobRequest(question=questions[number % len(questions)], user_id="bench"),
            account_id=account.id,
            deadline=timedelta(hours=1),
        )
        ids.append(job.id)
    return ids


def all_final(core: Services, ids: list[str]) -> bool:
    with Session(core.engine) as session:
        done = session.exec(
            select(func.count())
            .select_from(Job)
            .where(col(Job.id).in_(ids), col(Job.status).in_(FINAL))
        ).one()
    return int(done) >= len(ids)


def ragline_drain(
    core: Services, pipeline: Pipeline, redis_url: str, ids: list[str], threads: int
) -> float:
    """Drain ids through ragline's actor. Completions are counted in process, as the raw
    drain counts its no-ops (polling the database would compete for the same GIL); the
    database must then agree that every job is final."""
    broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    broker.flush_all()
    broker.declare_queue(QUEUE_NAME)
    completed = 0
    lock = threading.Lock()

    def answer_job(job_id: str) -> None:
        nonlocal completed
        pipeline.answer_job(job_id)
        with lock:
            completed += 1

    declare_answer_actor(broker, answer_job, time_limit_ms=core.config.jobs.lease_ms)
    send = sender(broker)
    for job_id in ids:
        send(job_id)
    elapsed = drain(broker, threads, lambda: completed >= len(ids))
    broker.close()
    assert all_final(core, ids), "a job the actor returned from is not final in the database"
    return len(ids) / elapsed


def no_stages(_job: Job) -> Outcome:
    return Outcome(status=JobStatus.ANSWERED, answer="ok", stage_timings={"none": 0.0})


def bench_config() -> RaglineConfig:
    data = load_config(REPO / "ragline.yaml").model_dump()
    data["review"]["sample_rate"] = 0.0
    data["knowledge"]["gate"]["smoke_queries"] = []
    return RaglineConfig.model_validate(data)


def ensure_index(index_dir: Path, config: RaglineConfig, embedder: Embedder, docs: int) -> int:
    """The chunk count of the index in index_dir (Qdrant local mode, its manifest and
    promotion in index_dir/manifest.db), building it first if there is none; copied into
    the embedded engine's shard (index_dir/index) if it is not there yet."""
    manifest = create_engine(f"sqlite:///{index_dir / 'manifest.db'}")
    create_schema(manifest)
    alias = config.assistant_pipeline.retrieval.source
    local = QdrantStore.open(path=index_dir / "qdrant")
    collection = local.resolve_alias(alias)
    if collection is None:
        manager = IndexManager(manifest, local, embedder, config.knowledge, alias=alias)
        with tempfile.TemporaryDirectory() as folder:
            corpus = Path(folder) / "corpus.jsonl"
            with (scifact() / "corpus.jsonl").open() as source, corpus.open("w") as target:
                for number, line in enumerate(source):
                    if number >= docs:
                        break
                    target.write(line)
            print(f"building a {docs}-abstract index once (minutes)…", flush=True)
            built = manager.build(Path(folder))
        manager.promote(built.version)
        collection = built.collection
    chunks = local.count(collection)
    local.close()
    edge = EdgeStore.open(index_dir / "index", promoted(manifest))
    import_local_versions(index_dir / "qdrant", edge)
    edge.close()
    manifest.dispose()
    return chunks


def open_engine(index_dir: Path, engine: str) -> KnowledgeStore:
    if engine == "qdrant-local":
        return QdrantStore.open(path=index_dir / "qdrant")
    manifest = create_engine(f"sqlite:///{index_dir / 'manifest.db'}")
    return EdgeStore.open(index_dir / "index", promoted(manifest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--full-jobs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database", default="postgresql+psycopg://127.0.0.1:5432/ragline_bench")
    parser.add_argument("--index-dir", type=Path, default=REPO / "data" / "bench-index")
    parser.add_argument("--docs", type=int, default=4000)
    args = parser.parse_args()
    configure_logging("WARNING", "console")

    index_dir = args.index_dir
    index_dir.mkdir(parents=True, exist_ok=True)
    questions = scifact_queries()
    config = bench_config()
    embedder = Embedder(config.knowledge.embedding_model)
    chunks = ensure_index(index_dir, config, embedder, args.docs)

    with private_redis() as redis_url:
        raw = raw_drain(redis_url, args.jobs, args.threads)
        print(f"raw dramatiq drain of no-op messages: {raw:8.1f} messages/s", flush=True)

        settings = Settings(
            data_dir=index_dir,
            database_url=fresh_database(args.database),
            prompts_dir=REPO / "prompts",
        )
        full: dict[str, float] = {}
        for engine, batching in (("qdrant-local", True), ("edge", False), ("edge", True)):
            store = open_engine(index_dir, engine)
            # Jobs are stored here and sent by ragline_drain, not by admission.
            given = Overrides(config=config, send=print, store=store, embedder=embedder)
            core = bootstrap(settings, Mode.WORKER, given)
            pipeline = core.need_pipeline()
            if not full:
                real_run = pipeline.run
                pipeline.run = no_stages  # type: ignore[method-assign]
                ids = stored_jobs(core, questions, args.jobs)
                bare = ragline_drain(core, pipeline, redis_url, ids, args.threads)
                print(f"ragline, stages disabled:             {bare:8.1f} jobs/s", flush=True)
                pipeline.run = real_run  # type: ignore[method-assign]
            embedder.batching = batching
            ids = stored_jobs(core, questions, args.full_jobs)
            label = f"{engine}, embeddings {'micro-batched' if batching else 'one by one'}"
            full[label] = ragline_drain(core, pipeline, redis_url, ids, args.threads)
            print(
                f"ragline, whole pipeline ({chunks} chunks), {label}: {full[label]:8.2f} jobs/s",
                flush=True,
            )
            core.close()
            store.close()

    edge = full["edge, embeddings micro-batched"]
    print(
        f"\nstages disabled / raw: {bare / raw:.2f} (target >= 0.50); "
        f"whole pipeline / raw: {edge / raw:.4f}; "
        f"edge / Qdrant local mode: {edge / full['qdrant-local, embeddings micro-batched']:.2f} "
        f"(target >= 3); micro-batched / one by one: "
        f"{edge / full['edge, embeddings one by one']:.2f}; threads {args.threads}, "
        f"database {args.database.split(':')[0]}"
    )


if __name__ == "__main__":
    main()
