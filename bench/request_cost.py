"""What hostile requests cost everyone else: /v1/health while clients flood the API.

    .venv/bin/python bench/request_cost.py [--flooders 6] [--probes 200]

`ragline serve` in embedded mode (the demo key) answers /v1/health quietly, then while
`--flooders` clients each send, back to back, a 1 MB POST /v1/jobs body of 100,000 unknown
fields (with the demo key: the work an authenticated caller can cause), then the same
without a key. Prints health's p50/p99 in each phase and the ratio to the quiet run
(issue 20's target: p99 under 100 ms while flooded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.admission import BIN, REPO, free_port, wait_up
from tests.support.floods import flood_body


def probe(url: str, count: int) -> list[float]:
    times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(count):
            started = time.perf_counter()
            client.get(f"{url}/v1/health")
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    return sorted(times)


def flooded(
    url: str, headers: dict[str, str], flooders: int, count: int
) -> tuple[list[float], int]:
    body, stop, sent = flood_body(), threading.Event(), [0]

    def flood() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                client.post(f"{url}/v1/jobs", content=body, headers=headers)
                sent[0] += 1

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(flooders)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    try:
        return probe(url, count), sent[0]
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def summary(name: str, times: list[float], quiet: list[float] | None = None) -> str:
    p50, p99 = statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
    line = f"  {name}: health p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    if quiet is not None:
        line += f" ({p99 / quiet[min(len(quiet) - 1, int(len(quiet) * 0.99))]:.1f}x quiet p99)"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flooders", type=int, default=6)
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "RAGLINE_DATA_DIR": folder,
            "RAGLINE_PORT": str(port),
            "RAGLINE_LOG_LEVEL": "WARNING",
            "RAGLINE_CONFIG": str(REPO / "ragline.yaml"),
            "RAGLINE_PROMPTS_DIR": str(REPO / "prompts"),
        }
        for name in ("RAGLINE_DATABASE_URL", "RAGLINE_REDIS_URL", "RAGLINE_QDRANT_URL"):
            env.pop(name, None)
        server = subprocess.Popen(
            [str(BIN / "ragline"), "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(url, server)
            for _ in range(100):
                if (Path(folder) / "demo-key").exists():
                    break
                time.sleep(0.1)
            key = (Path(folder) / "demo-key").read_text().strip()
            json_type = {"Content-Type": "application/json"}
            quiet = probe(url, args.probes)
            print(f"/v1/health with {args.flooders} clients sending 1 MB of 100,000 fields:")
            print(summary("quiet", quiet))
            with_key, sent = flooded(
                url, {**json_type, "Authorization": f"Bearer {key}"}, args.flooders, args.probes
            )
            print(summary(f"flooded with a key ({sent} bodies)", with_key, quiet))
            without, sent = flooded(url, json_type, args.flooders, args.probes)
            print(summary(f"flooded without a key ({sent} bodies)", without, quiet))
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
