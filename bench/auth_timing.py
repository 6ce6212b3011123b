"""Does rejecting an unknown key take measurably different time from rejecting a wrong
secret for a real key? (A difference would let an attacker probe which key ids exist.)

Runs both cases interleaved in one process on a fresh SQLite database and prints the median
of each and their ratio; ~1.00 is the goal. Valid-key authentication is printed as the
baseline.

    .venv/bin/python bench/auth_timing.py [rounds]
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ragline.accounts import Accounts
from ragline.db import make_engine
from ragline.errors import Unauthenticated
from ragline.schema import create_schema


def _timed(attempt: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    with contextlib.suppress(Unauthenticated):
        attempt()
    return (time.perf_counter_ns() - started) / 1000


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        create_schema(engine)
        accounts = Accounts(engine)
        accounts.create_account("bench")
        for _ in range(200):  # a realistic table, not a single row
            accounts.create_key("bench", roles=["submitter"])
        real = accounts.create_key("bench", roles=["submitter"]).plaintext
        key_id = real.split("_")[1]
        wrong_secret = f"rl_{key_id}_{'x' * 43}"
        unknown_id = f"rl_ffffffffffff_{'x' * 43}"
        cases: dict[str, Callable[[], object]] = {
            "valid key": lambda: accounts.authenticate(real),
            "wrong secret": lambda: accounts.authenticate(wrong_secret),
            "unknown id": lambda: accounts.authenticate(unknown_id),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, attempt in cases.items():
                samples[name].append(_timed(attempt))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        for name, value in medians.items():
            print(f"{name:<14} median {value:8.1f} µs over {rounds} rounds")
        ratio = medians["unknown id"] / medians["wrong secret"]
        print(f"unknown id / wrong secret = {ratio:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
