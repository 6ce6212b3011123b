"""The cost arithmetic: money in micro-units, worst-case estimates, and which budgets a job
counts against. Pure functions: no database."""

from __future__ import annotations

from datetime import UTC, datetime

from ragline.budget import (
    FRAMING_TOKENS_PER_MESSAGE,
    Estimate,
    budgets_for,
    cost_micros,
    estimate,
    from_micros,
    to_micros,
)
from ragline.config import (
    ModelSpec,
    Price,
)
from tests.support.budgets import FAKE_PRICE, REPORTED_IN, REPORTED_OUT

# -- cost arithmetic ----------------------------------------------------------------------------


def test_to_and_from_micros() -> None:
    assert to_micros(0) == 0
    assert to_micros(1) == 1_000_000
    assert to_micros(0.05) == 50_000  # 0.05 * 1e6 is 50000.000000000007 in floats
    assert to_micros(0.1 + 0.2) == 300_000  # 0.30000000000000004
    assert to_micros(0.0000001) == 1  # a tenth of a micro rounds up, never down to free
    assert to_micros(0.0000011) == 2
    assert from_micros(1_500_000) == 1.5
    assert from_micros(1) == 0.000001
    for micros in (0, 1, 7, 999_999, 50_000, 123_456_789):
        assert to_micros(from_micros(micros)) == micros


def test_cost_micros_rounds_up_to_the_micro() -> None:
    price = Price(input_per_1k=0.0002, output_per_1k=0.0006)
    assert cost_micros(price, 0, 0) == 0
    assert cost_micros(price, 1, 0) == 1  # 0.2 micro
    assert cost_micros(price, 0, 1) == 1  # 0.6 micro
    assert cost_micros(price, 120, 12) == 32  # 24 + 7.2 = 31.2 micros
    assert cost_micros(price, 5000, 0) == 1000  # exact: no rounding up
    assert cost_micros(Price(input_per_1k=1.0, output_per_1k=2.0), 1000, 500) == 2_000_000
    assert cost_micros(FAKE_PRICE, REPORTED_IN, REPORTED_OUT) == 72_000
    assert cost_micros(Price(), 10_000, 10_000) == 0


def test_estimate_is_the_worst_case() -> None:
    spec = ModelSpec(provider="openai_compatible", model_id="m", price=FAKE_PRICE, max_tokens=100)
    messages = ["héllo", "abc", ""]  # é is 2 bytes in UTF-8
    result = estimate(spec, messages)
    assert FRAMING_TOKENS_PER_MESSAGE == 8
    assert result.input_tokens == 6 + 3 + 0 + 3 * 8
    assert result.output_tokens == 100
    assert result.cost_micros == cost_micros(FAKE_PRICE, 33, 100) == 116_500
    # Extractive uses no model tokens, whatever its price says.
    extractive = ModelSpec(provider="extractive", price=FAKE_PRICE)
    assert estimate(extractive, messages) == Estimate(0, 0, 0)


NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)


def test_budgets_for_lists_account_and_feature_windows_in_one_order() -> None:
    refs = budgets_for("acme", "support", NOW)
    assert [r.counter_id for r in refs] == [
        "account:acme:daily:2026-11-27",
        "account:acme:monthly:2026-11",
        "feature:acme/support:daily:2026-11-27",
        "feature:acme/support:monthly:2026-11",
    ]
    assert [r.counter_id for r in budgets_for("acme", None, NOW)] == [
        "account:acme:daily:2026-11-27",
        "account:acme:monthly:2026-11",
    ]
