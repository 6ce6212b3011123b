"""The deployed topology as processes on this machine, for fault injection.

A private `redis-server` (on a free port, nothing kept on disk, so killing it harms nothing
else), a fresh PostgreSQL database, `ragline serve` (API only) and N `ragline worker`
processes (each owning a copy of the handbook's Qdrant local store), the fake model server
and a webhook receiver on loopback. Every part can be killed, stopped and started again.
The processes reach PostgreSQL through `Topology.database`, a TCP proxy that can be cut
(the server is shared: it is never stopped); the test's own `engine` connects directly.

`Topology.submit` sends a batch of jobs through the API; `Topology.check` reads the system of
record (the database), what the receiver got and the workers' logs, and lists every job that
is not final, was delivered other than exactly once, or was finished twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ragline.db import make_engine
from ragline.models import Delivery, DeliveryStatus, Job, JobStatus, ReviewItem
from tests.support.environment import HANDBOOK, POSTGRES_URL, REPO, unavailable
from tests.support.fake_model import FakeModelServer
from tests.support.processes import RAGLINE, ragline_env, run_ragline, wait_healthy
from tests.support.server import free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

REDIS_SERVER = "/usr/bin/redis-server"
DATABASE = "ragline_faults"
ACCOUNT = "faults"
# The handbook's smoke questions: the extractive fake model answers each from passage [1].
QUESTIONS = [
    "How many days of annual leave do employees get?",
    "What is the daily meal limit on domestic business travel?",
    "How much is the yearly training budget?",
    "How long is the free trial of Lumen Desk?",
    "What uptime does the Enterprise plan guarantee?",
    "Who approves a refund above 2,000 EUR?",
    "How fast must a security incident be reported?",
    "Is multi-factor authentication mandatory?",
]


def fresh_database(name: str) -> str:
    """Drop and create `name` next to the test database; return its URL."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as error:
        unavailable("PostgreSQL", error)
    finally:
        admin.dispose()
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


def faults_config(base: Path) -> dict[str, Any]:
    """The repo's ragline.yaml, tuned so that recovery and retries happen within a test:
    webhooks may reach loopback and are retried every 0.5-2 s; a queued job not picked up
    within 3 s or a running one silent for 10 s is sent again; a model call that is slow or
    hangs ends in 2 s; no rate limit, sampling or answer cache gets in the way of a few
    hundred jobs."""
    config: dict[str, Any] = yaml.safe_load(base.read_text())
    config["assistant_pipeline"]["generation"]["timeout_ms"] = 2_000
    config["deliveries"] = {
        "allow_private_targets": True,
        "poll_interval_ms": 200,
        "first_retry_s": 0.5,
        "max_retry_s": 2,
        "max_attempts": 30,  # about a minute of retries: longer than any outage here
        "timeout_s": 5,
    }
    config["jobs"] = {
        "deadline_ms": 180_000,  # recovery must not turn into timeout escalations
        "lease_ms": 10_000,
        "requeue_after_ms": 3_000,
        "sweep_interval_ms": 500,
        "max_queue_depth": 10_000,
        "retry_after_s": 1,
    }
    config["rate_limits"] = {"requests_per_second": 10_000, "burst": 10_000}
    config["review"] = {"sample_rate": 0.0}
    # A few questions asked hundreds of times: answered from the answer cache, they would
    # never reach the model faults and outages these tests inject.
    config["cache"] = {"enabled": False, "consistency": False}
    return config


# -- processes ------------------------------------------------------------------------------


class RedisServer:
    """A private redis-server that keeps nothing on disk: a restart empties it."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.starts += 1
        with (self.log_dir / f"redis.{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url)
        try:
            wait_for(lambda: self._pings(client), timeout_s=15, every_s=0.05)
        finally:
            client.close()

    def _pings(self, client: redis.Redis) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self, down_s: float = 0.0) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Service:
    """One `ragline` process that can be killed, stopped and started again; each start
    (incarnation) logs to its own file, so a restart keeps the logs of the one before."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_dir = log_dir
        self.process: subprocess.Popen[str] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.{self.starts}.log"

    def log_paths(self) -> list[Path]:
        return [self.log_dir / f"{self.name}.{n}.log" for n in range(1, self.starts + 1)]

    def start(self) -> None:
        self.starts += 1
        # A file, not a pipe: a full pipe nobody reads would block the process.
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [RAGLINE, *self.args],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> int:
        """SIGKILL: no clean-up of any kind."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait(timeout=30)

    def terminate(self, timeout_s: float = 60) -> int:
        """SIGTERM, then wait for the process to exit (it finishes what is in flight)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def events(self, event: str, incarnation: int | None = None) -> list[dict[str, Any]]:
        """The JSON log lines with this event, from one incarnation or all."""
        paths = (
            self.log_paths()
            if incarnation is None
            else [self.log_dir / f"{self.name}.{incarnation}.log"]
        )
        found = []
        for path in paths:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if f'"{event}"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by SIGKILL
                if record.get("event") == event:
                    found.append(record)
        return found

    def in_flight(self) -> set[str]:
        """Jobs this incarnation started and has not yet logged an end for."""
        started = {e["job_id"] for e in self.events("job_started", self.starts)}
        for event in (
            "job_finished",
            "job_outcome_discarded",
            "job_released",
            "job_release_failed",
        ):
            started -= {e["job_id"] for e in self.events(event, self.starts)}
        return started


class Worker(Service):
    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        super().start()

    def wait_ready(self) -> None:
        def ready() -> bool:
            if not self.running:
                raise AssertionError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
            return '"event": "workers_started"' in self.log_path.read_text(errors="replace")

        wait_for(ready, timeout_s=120, every_s=0.2)

    def restart(self) -> None:
        if self.running:
            self.kill()
        self.start()


# -- the webhook receiver -------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    answered: int  # the status code the receiver answered with
    # The signature checked on arrival, as a receiver does (its timestamp must be recent
    # then, not when a long run is checked): None if valid, else why not.
    signature_error: str | None = None


class WebhookReceiver:
    """Records every delivery by `webhook-id`. `down("503")` answers 503 to everything;
    `down("refuse")` closes the listening socket (connection refused); `up()` is back on
    the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.receipts: list[Receipt] = []
        self.mode = "up"
        self.verifier: Webhook | None = None  # set once the account's secret is known
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ragline"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                code = 204 if receiver.mode == "up" else 503
                headers = {k.lower(): v for k, v in self.headers.items()}
                error = None
                try:
                    if receiver.verifier is None:
                        raise WebhookVerificationError("no secret to verify with")
                    receiver.verifier.verify(body, headers)
                except WebhookVerificationError as problem:
                    error = str(problem)
                with receiver._lock:
                    receiver.receipts.append(
                        Receipt(headers.get("webhook-id", ""), headers, body, code, error)
                    )
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def up(self) -> None:
        self.mode = "up"
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            self._server.daemon_threads = True
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self, how: str) -> None:
        assert how in ("503", "refuse"), how
        self.mode = how
        if how == "refuse" and self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        self.down("refuse")

    def forget(self) -> None:
        with self._lock:
            self.receipts.clear()

    def delivered(self) -> list[Receipt]:
        """The receipts the receiver accepted (2xx)."""
        with self._lock:
            return [r for r in self.receipts if 200 <= r.answered < 300]

    def refused_count(self) -> int:
        with self._lock:
            return sum(1 for r in self.receipts if r.answered >= 300)


# -- submitting a batch ---------------------------------------------------------------------


@dataclass
class Submission:
    """A batch being submitted: idempotency key -> job id, and what went wrong."""

    total: int
    job_ids: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self.job_ids.values())

    def wait(self, timeout_s: float = 120) -> Submission:
        if not self.done.wait(timeout_s):
            raise AssertionError(f"submission not done in {timeout_s}s: {len(self.ids())} sent")
        return self


# -- the topology ---------------------------------------------------------------------------


class Topology:
    def __init__(
        self,
        root: Path,
        workers: int = 2,
        threads: int = 2,
        config: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """config: sections merged over faults_config's (bench/soak.py's longer deadline)."""
        self.root = root
        self.overrides = config or {}
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.logs)
        self.model = FakeModelServer()
        self.model.behaviour.mode = "extract"
        self.receiver = WebhookReceiver()
        postgres = make_url(POSTGRES_URL)
        self.database = TcpProxy(postgres.host or "127.0.0.1", postgres.port or 5432)
        self.worker_count = workers
        self.threads = threads
        self.workers: list[Worker] = []
        self.api: Service | None = None
        self.key = ""
        self.secret = ""
        self.database_url = ""  # direct, for the test's checks
        self.proxied_database_url = ""  # through `database`, for the processes
        self.base_url = ""
        self.engine: Engine | None = None
        self._model_started = False

    # set-up and tear-down

    def __enter__(self) -> Topology:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def env(self, data_dir: Path) -> dict[str, str]:
        return ragline_env(
            data_dir,
            RAGLINE_CONFIG=str(self.root / "ragline.yaml"),
            RAGLINE_DATABASE_URL=self.proxied_database_url,
            RAGLINE_REDIS_URL=self.redis.url,
            RAGLINE_MODEL_BASE_URL=self.model.base_url,
            RAGLINE_MODEL_API_KEY="sk-test-not-a-secret",
            RAGLINE_LOG_LEVEL="INFO",
            RAGLINE_INDEX_ENGINE="edge",
            PYTHONUNBUFFERED="1",
        )

    def _start(self) -> None:
        self.database_url = fresh_database(DATABASE)
        self.engine = make_engine(self.database_url)
        self.database.start()
        self.proxied_database_url = (
            make_url(self.database_url)
            .set(host="127.0.0.1", port=self.database.port)
            .render_as_string(hide_password=False)
        )
        config = faults_config(REPO / "ragline.yaml")
        for section, values in self.overrides.items():
            config[section] = {**config.get(section, {}), **values}
        (self.root / "ragline.yaml").write_text(yaml.safe_dump(config))
        self.redis.start()
        self.model.start()
        self._model_started = True
        self.receiver.up()
        index_dir = self.root / "index"
        env = self.env(index_dir)
        built = run_ragline("index", "build", str(HANDBOOK), "--promote", env=env)
        assert built.returncode == 0, built.stderr
        assert run_ragline("accounts", "create", ACCOUNT, env=env).returncode == 0
        issued = run_ragline("keys", "create", "--account", ACCOUNT, "--role", "submitter", env=env)
        assert issued.returncode == 0, issued.stderr
        self.key = issued.stdout.strip()
        secret = run_ragline("accounts", "webhook-secret", ACCOUNT, env=env)
        assert secret.returncode == 0, secret.stderr
        self.secret = secret.stdout.strip()
        self.receiver.verifier = Webhook(self.secret)
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.api = Service(
            "api", ["serve", "--port", str(port)], self.env(self.root / "api"), self.logs
        )
        self.api.start()
        for n in range(self.worker_count):
            # Every worker reads the one index the indexer built (sealed edge shards).
            self.workers.append(
                Worker(
                    f"worker-{n}",
                    ["worker", "--threads", str(self.threads)],
                    self.env(index_dir),
                    self.logs,
                )
            )
        for worker in self.workers:
            worker.launch()
        wait_healthy(self.base_url, {self.api.log_path: self.api.process})  # type: ignore[dict-item]
        for worker in self.workers:
            worker.wait_ready()

    def close(self) -> None:
        for service in [*self.workers, self.api]:
            if service is not None and service.running:
                try:
                    service.terminate(timeout_s=40)
                except subprocess.TimeoutExpired:
                    service.kill()
        self.redis.kill()
        self.database.cut()
        self.receiver.stop()
        if self._model_started:
            self.model.stop()
        if self.engine is not None:
            self.engine.dispose()

    def heal(self) -> None:
        """Bring back whatever a scenario left down, and forget what the receiver got."""
        if not self.redis.running:
            self.redis.start()
        self.database.restore()
        self.receiver.up()
        for worker in self.workers:
            if not worker.running:
                worker.start()
        assert self.api is not None and self.api.running, "the API process died"
        self.receiver.forget()

    # submitting

    def submit(
        self, count: int, tag: str, *, concurrency: int = 8, rate: float | None = None
    ) -> Submission:
        """Submit `count` jobs in a background thread; returns at once. rate: at most this
        many submissions per second (an open-loop load), else as fast as they are taken."""
        submission = Submission(total=count)
        thread = threading.Thread(
            target=self._submit_all, args=(submission, tag, concurrency, rate), daemon=True
        )
        thread.start()
        return submission

    def _submit_all(
        self, submission: Submission, tag: str, concurrency: int, rate: float | None
    ) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            with (
                httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client,
                ThreadPoolExecutor(concurrency) as pool,
            ):
                list(
                    pool.map(
                        lambda n: self._submit_one(client, submission, tag, n, rate),
                        range(submission.total),
                    )
                )
        finally:
            submission.finished = time.monotonic()
            submission.done.set()

    def _submit_one(
        self, client: httpx.Client, submission: Submission, tag: str, n: int, rate: float | None
    ) -> None:
        if rate is not None:
            time.sleep(max(0.0, submission.started + n / rate - time.monotonic()))
        key = f"{tag}-{n}"
        body = {
            "question": QUESTIONS[n % len(QUESTIONS)],
            "user_id": f"faults-{n}",
            "feature": "faults",
            "metadata": {"batch": tag, "n": n},
            "callback_url": self.receiver.url,
        }
        outcome = "not sent"
        # A client retries with the same Idempotency-Key: 429/503 say when, and a
        # connection error may hide an accepted job, which the key then returns.
        for _ in range(20):
            try:
                response = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as error:
                outcome = f"{type(error).__name__}"
                time.sleep(0.5)
                continue
            if response.status_code == 202:
                with submission._lock:
                    submission.job_ids[key] = response.json()["id"]
                return
            outcome = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code not in (429, 503):
                break
            time.sleep(min(5.0, float(response.headers.get("Retry-After", "1"))))
        with submission._lock:
            submission.errors[key] = outcome

    # reading the system of record

    def jobs(self, job_ids: Iterable[str]) -> dict[str, Job]:
        ids = list(job_ids)
        assert self.engine is not None
        with Session(self.engine) as session:
            return {job.id: job for job in session.exec(select(Job).where(col(Job.id).in_(ids)))}

    def statuses(self, job_ids: Iterable[str]) -> Counter[str]:
        return Counter(str(job.status) for job in self.jobs(job_ids).values())

    def final_count(self, submission: Submission) -> int:
        """How many of the batch's jobs (those admitted so far) are in an end state."""
        counts = self.statuses(submission.ids())
        return sum(n for status, n in counts.items() if JobStatus(status).final)

    def settle(self, job_ids: list[str], timeout_s: float) -> Settled:
        """Wait until every job is in an end state and every delivery it owes is delivered
        (or failed) and seen by the receiver, at most timeout_s."""
        settled = Settled()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            jobs = self.jobs(job_ids)
            if (
                settled.final_at is None
                and len(jobs) == len(job_ids)
                and all(JobStatus(j.status).final for j in jobs.values())
            ):
                settled.final_at = time.monotonic()
            if settled.final_at is not None and self._delivered(list(jobs.values())):
                settled.delivered_at = time.monotonic()
                return settled
            time.sleep(0.2)
        return settled

    def _delivered(self, jobs: list[Job]) -> bool:
        owed = [j.id for j in jobs if j.status != JobStatus.ESCALATED]
        deliveries = self._deliveries(owed)
        if any(d.status == DeliveryStatus.PENDING for ds in deliveries.values() for d in ds):
            return False
        seen = {_job_of(r) for r in self.receiver.delivered()}
        return all(job_id in seen for job_id in owed)

    def _deliveries(self, job_ids: list[str]) -> dict[str, list[Delivery]]:
        assert self.engine is not None
        found: dict[str, list[Delivery]] = defaultdict(list)
        with Session(self.engine) as session:
            query = select(Delivery).where(col(Delivery.job_id).in_(job_ids))
            for delivery in session.exec(query):
                found[delivery.job_id].append(delivery)
        return found

    def _review_items(self, job_ids: list[str]) -> set[str]:
        assert self.engine is not None
        with Session(self.engine) as session:
            query = select(ReviewItem.job_id).where(col(ReviewItem.job_id).in_(job_ids))
            return set(session.exec(query))

    def check(self, job_ids: list[str]) -> BatchReport:
        """Everything that went wrong with these jobs, read from the database, the
        receiver and the workers' logs."""
        jobs = self.jobs(job_ids)
        report = BatchReport(jobs=len(job_ids))
        report.statuses = Counter(str(j.status) for j in jobs.values())
        report.attempts = Counter(j.attempts for j in jobs.values())
        report.missing = sorted(set(job_ids) - set(jobs))
        ids = set(job_ids)
        receipts: dict[str, list[Receipt]] = defaultdict(list)
        for receipt in self.receiver.delivered():
            job_id = _job_of(receipt)
            if job_id not in ids:
                continue
            receipts[job_id].append(receipt)
            if receipt.signature_error is not None:
                report.bad_signatures.append(
                    f"{receipt.webhook_id} ({job_id}): {receipt.signature_error}"
                )
        outbox = self._deliveries(list(ids))
        reviewed = self._review_items(list(ids))
        finished: Counter[str] = Counter()
        discarded: Counter[str] = Counter()
        for worker in self.workers:
            finished.update(e["job_id"] for e in worker.events("job_finished") if "job_id" in e)
            discarded.update(e["job_id"] for e in worker.events("job_outcome_discarded"))
        report.outcomes_discarded = sum(discarded[i] for i in ids)
        for job_id, job in sorted(jobs.items()):
            status = JobStatus(job.status)
            if not status.final:
                report.not_final[job_id] = status.value
                continue
            if status == JobStatus.FAILED:
                report.failed[job_id] = job.error or ""
            if finished[job_id] > 1:
                report.finished_twice[job_id] = finished[job_id]
            if not job.stage_timings and status in (JobStatus.ANSWERED, JobStatus.ESCALATED):
                report.no_timings.append(job_id)
            got = receipts.get(job_id, [])
            distinct = Counter(r.webhook_id for r in got)
            rows = outbox.get(job_id, [])
            if status == JobStatus.ESCALATED:
                # Held for a reviewer: nothing is sent until a decision.
                if got or rows:
                    report.unexpected.append(f"{job_id}: escalated but delivered {list(distinct)}")
                if job_id not in reviewed:
                    report.unexpected.append(f"{job_id}: escalated with no review item")
                continue
            if len(rows) != 1:
                report.outbox_rows[job_id] = [f"{d.id}:{d.status}" for d in rows]
            if not distinct:
                report.undelivered[job_id] = [
                    f"{d.id}:{d.status} attempts={d.attempts} last={d.last_error}" for d in rows
                ]
            elif len(distinct) > 1:
                report.delivered_twice[job_id] = sorted(distinct)
            for webhook_id, times in distinct.items():
                if times > 1:
                    report.redelivered[webhook_id] = times
            for receipt in got:
                payload = json.loads(receipt.body)
                if payload["data"]["status"] != status or payload["type"] != f"job.{status}":
                    report.mismatched.append(
                        f"{job_id}: db {status}, delivered {payload['type']} "
                        f"{payload['data']['status']}"
                    )
        report.delivery_attempts = Counter(d.attempts for rows in outbox.values() for d in rows)
        return report


def _job_of(receipt: Receipt) -> str:
    try:
        return str(json.loads(receipt.body)["data"]["id"])
    except (ValueError, KeyError, TypeError):
        return ""


@dataclass
class Settled:
    """When (time.monotonic) a batch was all final, and all delivered; None: not in time."""

    final_at: float | None = None
    delivered_at: float | None = None


@dataclass
class BatchReport:
    """What `Topology.check` found for one batch; `problems()` is empty when every job is
    final, delivered exactly once (by webhook-id) with what the database says, and timed."""

    jobs: int
    statuses: Counter[str] = field(default_factory=Counter)
    attempts: Counter[int] = field(default_factory=Counter)
    delivery_attempts: Counter[int] = field(default_factory=Counter)
    outcomes_discarded: int = 0
    missing: list[str] = field(default_factory=list)
    not_final: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    finished_twice: dict[str, int] = field(default_factory=dict)
    no_timings: list[str] = field(default_factory=list)
    outbox_rows: dict[str, list[str]] = field(default_factory=dict)
    undelivered: dict[str, list[str]] = field(default_factory=dict)
    delivered_twice: dict[str, list[str]] = field(default_factory=dict)
    redelivered: dict[str, int] = field(default_factory=dict)
    mismatched: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    bad_signatures: list[str] = field(default_factory=list)

    def problems(self, *, allow_redelivery: bool = False) -> list[str]:
        """allow_redelivery: a worker killed between sending a webhook and recording it
        sends it once more with the same webhook-id (at least once, de-duplicated by the
        receiver): acceptable after a SIGKILL, and still reported by `summary()`."""
        found = []

        def add(what: str, items: object) -> None:
            if items:
                found.append(f"{what}: {items}")

        add("jobs missing from the database", self.missing)
        add("jobs not final (lost)", self.not_final)
        add("jobs failed", self.failed)
        add("jobs finished twice (job_finished logged more than once)", self.finished_twice)
        add("jobs without stage timings", self.no_timings)
        add("jobs without exactly one outbox row", self.outbox_rows)
        add("jobs never delivered", self.undelivered)
        add("jobs delivered under two webhook-ids (answered twice)", self.delivered_twice)
        if not allow_redelivery:
            add("webhook-ids delivered successfully more than once", self.redelivered)
        add("deliveries that disagree with the database", self.mismatched)
        add("unexpected", self.unexpected)
        add("bad signatures", self.bad_signatures)
        return found

    def summary(self) -> str:
        return (
            f"{self.jobs} jobs {dict(self.statuses)}; job attempts {dict(self.attempts)}; "
            f"delivery attempts {dict(self.delivery_attempts)}; outcomes discarded "
            f"{self.outcomes_discarded}; same webhook-id delivered twice: "
            f"{self.redelivered or 'none'}"
        )
