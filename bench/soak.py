"""Soak: thousands of jobs through the deployed topology, a worker killed in the middle.

    .venv/bin/python bench/soak.py [--jobs 10000] [--rate 20] [--workers 2] [--threads 2]

The fault suite's topology (tests/support/topology.py) as processes on this machine: a
private redis-server, a fresh PostgreSQL database, `ragline serve` and `ragline worker`
processes on the handbook index, the fake model server answering extractively, a webhook
receiver. Jobs are submitted open-loop at --rate per second (each with a callback); when
half of them are final, worker-0 is killed with SIGKILL and started again. Then every job is
checked as the fault suite checks it (final, delivered exactly once by webhook-id, timed).

Reports: jobs/s (final and delivered), end-to-end latency p50/p95/p99 (admitted → outcome
stored, and → webhook delivered; all jobs, and those admitted over a minute before the kill,
which nothing delays), peak resident memory of every process (VmHWM, each worker
incarnation separately), and the lost / answered-twice counts, which must be 0 / 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ragline.models import Delivery, Job, utcnow  # noqa: E402
from tests.support.topology import Topology  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def peak_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), in KiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemoryWatch:
    """Samples every process's VmHWM each second, keyed by name and incarnation, so a
    killed worker's peak is kept."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        services = [self.topology.api, *self.topology.workers]
        for service in services:
            if service is None or service.process is None:
                continue
            name = f"{service.name} #{service.starts}"
            self.peaks[name] = max(self.peaks.get(name, 0), peak_kib(service.process.pid))
        redis = self.topology.redis.process
        if redis is not None:
            self.peaks["redis-server"] = max(self.peaks.get("redis-server", 0), peak_kib(redis.pid))


def latencies(topology: Topology, ids: list[str]) -> list[tuple[datetime, float, float | None]]:
    """Per job: when it was admitted, seconds to its stored outcome and to its webhook."""
    assert topology.engine is not None
    found = []
    with Session(topology.engine) as session:
        for chunk in range(0, len(ids), 1000):
            part = ids[chunk : chunk + 1000]
            query = (
                select(Job.created_at, Job.finished_at, Delivery.delivered_at)
                .join(Delivery, col(Delivery.job_id) == col(Job.id), isouter=True)
                .where(col(Job.id).in_(part), col(Job.finished_at).is_not(None))
            )
            for created, finished, delivered in session.exec(query):
                assert finished is not None
                found.append(
                    (
                        created,
                        (finished - created).total_seconds(),
                        None if delivered is None else (delivered - created).total_seconds(),
                    )
                )
    return found


def print_latencies(name: str, rows: list[tuple[datetime, float, float | None]]) -> None:
    finished = [row[1] for row in rows]
    delivered = [row[2] for row in rows if row[2] is not None]
    for what, values in (("→ finished", finished), ("→ delivered", delivered)):
        if not values:  # a short run: nothing was admitted that long before the kill
            print(f"{name:<28} {what:<12} no jobs")
            continue
        print(
            f"{name:<28} {what:<12} p50 {percentile(values, 50):6.2f}s  "
            f"p95 {percentile(values, 95):6.2f}s  p99 {percentile(values, 99):6.2f}s  "
            f"({len(values)} jobs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20.0, help="submissions per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        # A deadline far beyond the run: the soak measures loss and latency, not timeouts.
        config = {"jobs": {"deadline_ms": 3_600_000, "max_queue_depth": 100_000}}
        print("starting the topology (index build, API, workers)…", flush=True)
        with (
            Topology(Path(folder), args.workers, args.threads, config) as topology,
            MemoryWatch(topology) as memory,
        ):
            submission = topology.submit(args.jobs, "soak", concurrency=16, rate=args.rate)
            started = submission.started
            wait_for(
                lambda: topology.final_count(submission) >= args.jobs // 2,
                timeout_s=args.jobs / args.rate * 4 + 600,
                every_s=1.0,
            )
            victim = topology.workers[0]
            in_flight = victim.in_flight()
            memory.sample()
            victim.kill()
            killed_wall = utcnow()
            killed_at = time.monotonic() - started
            print(f"killed {victim.name} at {killed_at:.0f}s, {len(in_flight)} jobs in flight")
            victim.start()
            submission.wait(timeout_s=args.jobs / args.rate * 4 + 600)
            assert not submission.errors, f"submissions refused: {submission.errors}"
            ids = submission.ids()
            settled = topology.settle(ids, timeout_s=1800)
            report = topology.check(ids)
            timed = latencies(topology, ids)

        problems = report.problems(allow_redelivery=True)
        final_s = (settled.final_at or float("nan")) - started
        delivered_s = (settled.delivered_at or float("nan")) - started
        lost = len(report.missing) + len(report.not_final)
        twice = len(report.finished_twice) + len(report.delivered_twice)
        print(f"\n{len(ids)} jobs submitted at {args.rate:g}/s; {report.summary()}")
        print(
            f"all final after {final_s:.0f}s ({len(ids) / final_s:.1f} jobs/s), "
            f"all delivered after {delivered_s:.0f}s ({len(ids) / delivered_s:.1f} jobs/s)"
        )
        print_latencies("admitted", timed)
        # Steady state: admitted at least a minute before the kill (nothing waits on it).
        steady = [r for r in timed if (killed_wall - r[0]).total_seconds() > 60]
        print_latencies("admitted > 60 s before kill", steady)
        print("peak resident memory (VmHWM):")
        for name, kib in sorted(memory.peaks.items()):
            print(f"  {name:<14} {kib / 1024:7.0f} MiB")
        print(f"lost {lost}, answered twice {twice}; problems: {problems or 'none'}")
        if problems:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
