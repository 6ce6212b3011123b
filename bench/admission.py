"""Admission latency: POST /v1/jobs on the deployed API against a bare FastAPI endpoint.

    .venv/bin/python bench/admission.py [--users 16] [--seconds 30]
        [--database postgresql+psycopg://127.0.0.1:5432/ragline_bench]

Both servers run as uvicorn processes with the settings `ragline serve` uses (one worker
process, no access log), one after the other, each loaded by locust (headless, FastHttpUser,
no wait) with the same users and duration. ragline runs in deployed mode on a private
redis-server and PostgreSQL, so admission is what it is in production: authentication, rate
limit, validation, PII redaction, the idempotency lookup, the budget precheck, the job row and
the queue message. Reports each side's p50/p99 and requests/s from locust's CSV, and the
ratios (targets: ragline within 3x of the bare endpoint at one user, 5x at 16).
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.queue_throughput import fresh_database, private_redis

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HERE = REPO / "bench" / "admission_load"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_up(url: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {server.returncode}")
        try:
            # Any answer will do: admission needs no promoted index, so ragline's health
            # may well say 503 (store down) while it admits jobs.
            httpx.get(f"{url}/v1/health", timeout=1)
            return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not come up")


def load(url: str, key: str, users: int, seconds: int, out: Path) -> dict[str, float]:
    prefix = out / "stats"
    times = out / "times.txt"
    subprocess.run(
        [
            *(str(BIN / "locust"), "-f", str(HERE / "locustfile.py"), "--headless"),
            *("-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", url),
            *("--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"),
        ],
        env={**os.environ, "BENCH_KEY": key, "BENCH_TIMES": str(times)},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "POST /v1/jobs")
    # Percentiles from each request's exact time (locust's own are whole milliseconds).
    measured = sorted(float(line) for line in times.read_text().split())
    return {
        "p50": measured[len(measured) // 2],
        "p99": measured[min(len(measured) - 1, int(len(measured) * 0.99))],
        "rps": float(row["Requests/s"]),
        "failures": float(row["Failure Count"]),
        "requests": float(row["Request Count"]),
    }


def serve(command: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_up(url, server)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--database", default="postgresql+psycopg://127.0.0.1:5432/ragline_bench")
    args = parser.parse_args()

    with private_redis() as redis_url, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = yaml.safe_load((REPO / "ragline.yaml").read_text())
        # The load is one key: lift its rate limit and the backlog cap out of the way.
        config["rate_limits"] = {"requests_per_second": 1_000_000, "burst": 1_000_000}
        config["jobs"]["max_queue_depth"] = 10_000_000
        (root / "ragline.yaml").write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "RAGLINE_CONFIG": str(root / "ragline.yaml"),
            "RAGLINE_DATA_DIR": str(root),
            "RAGLINE_DATABASE_URL": fresh_database(args.database),
            "RAGLINE_REDIS_URL": redis_url,
            "RAGLINE_LOG_LEVEL": "WARNING",
            "RAGLINE_PROMPTS_DIR": str(REPO / "prompts"),
            # PostgreSQL: every process needs the same key for secrets at rest.
            "RAGLINE_SECRET_KEY": secrets.token_urlsafe(32),
        }
        ragline = str(BIN / "ragline")
        subprocess.run(
            [ragline, "accounts", "create", "bench"], env=env, check=True, capture_output=True
        )
        key = subprocess.run(
            [ragline, "keys", "create", "--account", "bench", "--role", "submitter"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

        results = {}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        bare = serve(
            [
                str(BIN / "uvicorn"),
                "bare_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            {**env, "PYTHONPATH": str(HERE)},
            url,
        )
        try:
            results["bare"] = load(url, key, args.users, args.seconds, root)
        finally:
            bare.terminate()
            bare.wait(30)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        api = serve([ragline, "serve", "--port", str(port)], env, url)
        try:
            results["ragline"] = load(url, key, args.users, args.seconds, root)
        finally:
            api.terminate()
            api.wait(30)

    for name, r in results.items():
        print(
            f"{name:<8} p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  "
            f"{r['rps']:7.1f} req/s  {int(r['failures'])} failures of {int(r['requests'])}"
        )
    ours, base = results["ragline"], results["bare"]
    print(
        f"\nragline / bare: p50 {ours['p50'] / base['p50']:.2f}x, p99 "
        f"{ours['p99'] / base['p99']:.2f}x, throughput {ours['rps'] / base['rps']:.2f} "
        f"(target: latency within {3 if args.users == 1 else 5}x); {args.users} users, "
        f"{args.seconds} s each"
    )


if __name__ == "__main__":
    main()
