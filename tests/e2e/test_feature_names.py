"""Client-chosen feature names cannot raise a budget nor grow /metrics: undeclared names are
labelled `other` (or refused with 422 under budgets.undeclared_features: reject), and
/metrics can require a bearer token. In-process app (deployed mode, nothing answers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from cli.wiring import http_services
from ragline.bootstrap import Mode
from ragline.config import RaglineConfig, parse_config
from tests.support.problems import problem
from tests.support.services import bootstrapped, settings_for
from tests.support.tenants import make_tenant
from workers.broker import make_broker, sender


@contextmanager
def _client(
    config: RaglineConfig, engine: Engine, directory: Path, **settings: str
) -> Iterator[TestClient]:
    broker = make_broker(None)
    with bootstrapped(
        Mode.SERVER,
        directory,
        config,
        settings=settings_for(directory, **settings),
        engine=engine,
        send=sender(broker),
    ) as services:
        _, key = make_tenant(engine, roles=("submitter",))
        app = create_app(http_services(services, broker))
        yield TestClient(app, headers={"Authorization": f"Bearer {key}"})


def _with(repo_config: RaglineConfig, undeclared: str) -> RaglineConfig:
    data = repo_config.model_dump()
    data["budgets"]["features"] = {"handbook": {"daily": 1.0}, "default": {"daily": 0.1}}
    data["budgets"]["undeclared_features"] = undeclared
    return parse_config(data)


@pytest.fixture
def shared(
    repo_config: RaglineConfig, sqlite_engine: Engine, tmp_path: Path
) -> Iterator[TestClient]:
    with _client(
        _with(repo_config, "share"), sqlite_engine, tmp_path, metrics_token="s3"
    ) as client:
        yield client


def _submit(client: TestClient, feature: str) -> int:
    body = {"question": "How many days of leave?", "user_id": "u-1", "feature": feature}
    return client.post("/v1/jobs", json=body).status_code


def test_undeclared_features_are_one_metrics_label_and_metrics_need_the_token(
    shared: TestClient,
) -> None:
    assert _submit(shared, "handbook") == 202
    for number in range(3):
        assert _submit(shared, f"invented-{number}") == 202
    assert problem(shared.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
    assert shared.get("/metrics", headers={"Authorization": ""}).status_code == 401
    scraped = shared.get("/metrics", headers={"Authorization": "Bearer s3"})
    assert scraped.status_code == 200
    submitted = [
        line for line in scraped.text.splitlines() if line.startswith("ragline_jobs_submitted")
    ]
    assert any('feature="other"' in line for line in submitted)
    assert any('feature="handbook"' in line for line in submitted)
    assert not any("invented" in line for line in submitted)


def test_undeclared_features_are_refused_when_configured_so(
    repo_config: RaglineConfig, sqlite_engine: Engine, tmp_path: Path
) -> None:
    with _client(_with(repo_config, "reject"), sqlite_engine, tmp_path) as client:
        assert _submit(client, "handbook") == 202
        body = {"question": "How many days of leave?", "user_id": "u-1", "feature": "invented"}
        refused = problem(client.post("/v1/jobs", json=body), 422)
    assert "feature 'invented' is not declared in budgets.features" in refused["detail"]
    assert "(declared: handbook)" in refused["detail"]
