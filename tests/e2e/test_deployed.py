"""The deployed topology as processes: `ragline serve` (API only) and `ragline worker`
(dramatiq on the real Redis), PostgreSQL as the system of record, Qdrant local owned by
the worker process, the model server on loopback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from standardwebhooks.webhooks import Webhook

from tests.support.environment import HANDBOOK, POSTGRES_URL, REPO, unavailable
from tests.support.fake_model import FakeModelServer
from tests.support.processes import ragline_env, run_ragline, start_ragline, stop, wait_healthy
from tests.support.receiver import receiving
from tests.support.server import free_port
from tests.support.topology import fresh_database
from tests.support.waiting import wait_for

REDIS_URL = "redis://127.0.0.1:6379/14"
DATABASE = "ragline_e2e"

# Real processes: `make test-slow`.
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    try:
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        client.close()
    except redis.ConnectionError as error:
        unavailable("Redis", error)
    data_dir = tmp_path_factory.mktemp("deployed")
    model = FakeModelServer().start()
    model.behaviour.reply = "Employees receive 25 days of paid annual leave per year [1]."
    # The repo's config, letting webhooks reach the test's receiver on loopback.
    config = yaml.safe_load((REPO / "ragline.yaml").read_text())
    config["deliveries"] = {"allow_private_targets": True, "poll_interval_ms": 200}
    (data_dir / "ragline.yaml").write_text(yaml.safe_dump(config))
    env = ragline_env(
        data_dir,
        RAGLINE_CONFIG=str(data_dir / "ragline.yaml"),
        RAGLINE_DATABASE_URL=fresh_database(DATABASE),
        RAGLINE_REDIS_URL=REDIS_URL,
        RAGLINE_MODEL_BASE_URL=model.base_url,
        RAGLINE_MODEL_API_KEY="sk-test-not-a-secret",
        RAGLINE_LOG_LEVEL="INFO",
    )
    built = run_ragline("index", "build", str(HANDBOOK), "--promote", env=env)
    assert built.returncode == 0, built.stderr
    # Bootstrap as the README says: an account and a key, straight on the database.
    assert run_ragline("accounts", "create", "crm", env=env).returncode == 0
    issued = run_ragline("keys", "create", "--account", "crm", "--role", "submitter", env=env)
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.strip()
    port, metrics_port = free_port(), free_port()
    worker = start_ragline(
        ["worker", "--threads", "2", "--metrics-port", str(metrics_port)],
        env,
        data_dir / "worker.log",
    )
    # Two API processes on the port (`--workers`), as a deployment scales one host.
    api = start_ragline(["serve", "--port", str(port), "--workers", "2"], env, data_dir / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, {data_dir / "worker.log": worker, data_dir / "api.log": api})
        yield {
            "base": base,
            "key": key,
            "worker": worker,
            "api": api,
            "data_dir": data_dir,
            "model": model,
            "worker_metrics": f"http://127.0.0.1:{metrics_port}/metrics",
        }
    finally:
        stop(api)
        stop(worker)
        model.stop()


def test_health_reports_the_deployed_components(deployment: dict[str, object]) -> None:
    body = httpx.get(f"{deployment['base']}/v1/health").json()
    assert body["mode"] == "deployed"
    assert body["components"]["database"]["detail"] == "postgresql"
    assert body["components"]["broker"]["detail"] == "redis"
    # The embedded engine's shards are shared: the API opens the promoted version too.
    assert body["components"]["store"] == {
        "status": "ok",
        "detail": "approved-knowledge-base -> kb_v1",
    }


def test_a_job_is_answered_by_the_worker_process_with_the_model(
    deployment: dict[str, object],
) -> None:
    base = deployment["base"]
    headers = {"Authorization": f"Bearer {deployment['key']}"}
    with httpx.Client(base_url=str(base), timeout=30, headers=headers) as client:
        response = client.post(
            "/v1/jobs",
            json={
                "question": "How much annual leave does staff get?",
                "user_id": "crm-1",
            },
            headers={"Idempotency-Key": "deployed-1"},
        )
        assert response.status_code == 202
        job_id = response.json()["id"]

        def done() -> dict | None:
            body = client.get(f"/v1/jobs/{job_id}").json()
            return body if body["status"] not in ("queued", "running") else None

        job = wait_for(done, timeout_s=60)
    assert job["status"] == "answered", job
    assert job["versions"]["model_id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert job["citations"][0]["document_id"] == "hr/annual-leave"
    model = deployment["model"]
    assert isinstance(model, FakeModelServer)
    sent = model.behaviour.requests[-1]
    assert sent["headers"]["Authorization"] == "Bearer sk-test-not-a-secret"
    # The worker process exports its own metrics.
    worker_metrics = httpx.get(str(deployment["worker_metrics"])).text
    assert 'ragline_jobs_finished_total{reason="",status="answered"}' in worker_metrics
    model_calls = 'model_id="meta-llama/Llama-3.1-8B-Instruct",outcome="ok"'
    assert f"ragline_model_calls_total{{{model_calls}}}" in worker_metrics


def test_the_worker_process_delivers_a_signed_webhook(deployment: dict[str, object]) -> None:
    data_dir = deployment["data_dir"]
    assert isinstance(data_dir, Path)
    env = ragline_env(
        data_dir,
        RAGLINE_CONFIG=str(data_dir / "ragline.yaml"),
        RAGLINE_DATABASE_URL=POSTGRES_URL.rsplit("/", 1)[0] + f"/{DATABASE}",
    )
    secret = run_ragline("accounts", "webhook-secret", "crm", env=env).stdout.strip()
    headers = {"Authorization": f"Bearer {deployment['key']}"}
    with receiving() as receiver:
        response = httpx.post(
            f"{deployment['base']}/v1/jobs",
            json={
                "question": "How many days of annual leave do employees get?",
                "user_id": "crm-2",
                "callback_url": receiver.url,
            },
            headers=headers,
        )
        assert response.status_code == 202, response.text
        wait_for(lambda: receiver.received or None, timeout_s=60)
    delivered = receiver.received[0]
    payload = Webhook(secret).verify(delivered.body, delivered.headers)
    assert payload["type"] == "job.answered"
    assert payload["data"]["id"] == response.json()["id"]
    assert payload["data"]["decided_by"] == "model"
    assert delivered.headers["webhook-id"].startswith("msg_")


def test_sigterm_stops_the_worker_gracefully_and_logs_hold_no_secrets(
    deployment: dict[str, object],
) -> None:
    worker = deployment["worker"]
    assert isinstance(worker, subprocess.Popen)
    assert stop(worker) == 0
    data_dir = deployment["data_dir"]
    assert isinstance(data_dir, Path)
    logs = (data_dir / "worker.log").read_text() + (data_dir / "api.log").read_text()
    assert '"event": "workers_stopped"' in logs
    assert "Traceback" not in logs
    assert "sk-test-not-a-secret" not in logs
    assert "asks crm-77" not in logs
    assert str(deployment["key"]).split("_", 2)[2] not in logs  # never the key's secret
