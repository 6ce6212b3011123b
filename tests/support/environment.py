"""Where the repository is and which services the tests talk to: Redis, PostgreSQL (set
RAGLINE_TEST_REDIS_URL / RAGLINE_TEST_POSTGRES_URL to move them). Locally a missing service
skips its tests; under CI=true it fails them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HANDBOOK = REPO / "examples" / "handbook"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "RAGLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("RAGLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
# Every process of a test run seals webhook secrets under this key (ragline/secret_box.py):
# in-process services, commands run in-process and the ragline processes tests start share
# databases, so they must share the key too.
TEST_SECRET_KEY = "ragline-test-suite-secret-key-not-for-deployment"


def unavailable(what: str, error: Exception) -> None:
    if CI:
        raise RuntimeError(f"{what} is required under CI: {error}") from error
    pytest.skip(f"{what} is not available: {error}")
