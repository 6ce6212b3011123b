"""The reviewers every review-queue test starts from: alice and bob of account acme."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from ragline.accounts import Principal
from tests.support.reviews import reviewer


@pytest.fixture
def alice(engine: Engine) -> Principal:
    return reviewer(engine, "alice")


@pytest.fixture
def bob(engine: Engine, alice: Principal) -> Principal:
    return reviewer(engine, "bob")


@pytest.fixture
def acme(alice: Principal) -> str:
    return alice.account_id
