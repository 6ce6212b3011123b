"""Queue throughput: ragline's job path against a raw dramatiq drain, measured in one run.

    .venv/bin/python bench/queue_throughput.py [--jobs 2000] [--full-jobs 100] [--threads 4]
        [--database postgresql+psycopg://127.0.0.1:5432/ragline_bench] [--index-dir DIR]

On a private redis-server (a free port, nothing on disk) and the same dramatiq Worker
settings (threads, worker_timeout) for every phase:
1. raw: N no-op messages enqueued, then drained by a dramatiq Worker;
2. ragline, stages disabled: N jobs stored as the API stores them, their answer_job
   messages enqueued, then drained by ragline's actor: claim (compare-and-set), finish
   (outcome, review and delivery rows in one transaction), everything but the stages;
   target >= 50% of raw;
3. ragline, whole pipeline: the extractive provider on a ~10k-chunk index (the promoted
   index in --index-dir, e.g. data/scifact from `make eval-scifact`, else the first 4,000
   SciFact abstracts, built once into data/bench-index), SciFact claims as questions;
   twice: question embeddings one by one, then micro-batched (the worker's default).
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
from ragline.models import Job, JobStatus
from ragline.observability import configure_logging
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
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


def ensure_index(core: Services, docs: int) -> int:
    """The chunk count behind the retrieval alias, building it first if there is none
    (the store's alias is what retrieval reads; the manifest may live in another database)."""
    alias = core.config.assistant_pipeline.retrieval.source
    store, manager = core.need_store(), core.index
    assert manager is not None
    collection = store.resolve_alias(alias)
    if collection is not None:
        return store.count(collection)
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
    return built.chunk_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--full-jobs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database", default="postgresql+psycopg://127.0.0.1:5432/ragline_bench")
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--docs", type=int, default=4000)
    args = parser.parse_args()
    configure_logging("WARNING", "console")

    index_dir = args.index_dir
    if index_dir is None:
        scifact = REPO / "data" / "scifact"
        index_dir = scifact if (scifact / "qdrant").exists() else REPO / "data" / "bench-index"
    index_dir.mkdir(parents=True, exist_ok=True)
    questions = scifact_queries()

    with private_redis() as redis_url:
        raw = raw_drain(redis_url, args.jobs, args.threads)
        print(f"raw dramatiq drain of no-op messages: {raw:8.1f} messages/s", flush=True)

        settings = Settings(
            data_dir=index_dir,
            database_url=fresh_database(args.database),
            prompts_dir=REPO / "prompts",
        )
        # Jobs are stored here and sent by ragline_drain, not by admission.
        core = bootstrap(settings, Mode.WORKER, Overrides(config=bench_config(), send=print))
        embedder = core.need_embedder()
        chunks = ensure_index(core, args.docs)
        pipeline = core.need_pipeline()

        real_run = pipeline.run
        pipeline.run = no_stages  # type: ignore[method-assign]
        ids = stored_jobs(core, questions, args.jobs)
        bare = ragline_drain(core, pipeline, redis_url, ids, args.threads)
        print(f"ragline, stages disabled:             {bare:8.1f} jobs/s", flush=True)

        pipeline.run = real_run  # type: ignore[method-assign]
        full: dict[bool, float] = {}
        for batching in (False, True):  # question embeddings one by one, then micro-batched
            embedder.batching = batching
            ids = stored_jobs(core, questions, args.full_jobs)
            full[batching] = ragline_drain(core, pipeline, redis_url, ids, args.threads)
            print(
                f"ragline, whole pipeline ({chunks} chunks), embeddings "
                f"{'micro-batched' if batching else 'one by one'}: {full[batching]:8.2f} jobs/s",
                flush=True,
            )
        core.close()

    print(
        f"\nstages disabled / raw: {bare / raw:.2f} (target >= 0.50); "
        f"whole pipeline / raw: {full[True] / raw:.4f}; micro-batched / one by one: "
        f"{full[True] / full[False]:.2f}; threads {args.threads}, "
        f"database {args.database.split(':')[0]}"
    )


if __name__ == "__main__":
    main()
