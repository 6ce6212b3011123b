"""The promote gate's evaluation: the dataset on the active index version and on the
candidate, compared with the configured tolerances. `ragline index promote N --eval FILE`
refuses a candidate that regresses."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.bootstrap import Services
from ragline.config import Evaluation
from ragline.errors import InvalidInput
from ragline.evaluation.compare import Comparison, compare_runs
from ragline.evaluation.dataset import EvalItem
from ragline.evaluation.run import run_evaluation
from ragline.models import EvalRun
from ragline.variant import Variant


def gate_run_name(version: int) -> str:
    return f"promote gate v{version}"


def evaluate_candidate(
    services: Services,
    items: list[EvalItem],
    dataset: str,
    candidate: int,
) -> Comparison | None:
    """None when no version is active yet (nothing to regress from)."""
    index = services.index
    assert index is not None, "the promote gate runs where the store is open"
    active = index.active_version()
    if active is None or active == candidate:
        return None
    runs = [
        run_evaluation(
            services,
            items,
            dataset=dataset,
            variant=Variant(index=version),
            name=gate_run_name(version),
        )
        for version in (active, candidate)
    ]
    for run in runs:
        if not run.complete:
            raise InvalidInput(f"the gate's evaluation did not finish: {run.note}", field="eval")
    settings = services.config.evaluation
    return compare_runs(
        runs[0],
        runs[1],
        settings.tolerances,
        samples=settings.bootstrap_samples,
        level=settings.confidence_level,
    )


def last_gate(
    engine: Engine, candidate: int, active: int | None, settings: Evaluation
) -> Comparison | None:
    """The latest gate a promotion of `candidate` ran against `active` (the newest
    complete run of each on the same dataset), compared again; None when none ran."""
    if active is None or active == candidate:
        return None
    with Session(engine) as session:
        candidates = session.exec(
            select(EvalRun)
            .where(col(EvalRun.name) == gate_run_name(candidate), col(EvalRun.complete))
            .order_by(col(EvalRun.created_at).desc())
            .limit(1)
        ).all()
        if not candidates:
            return None
        run = candidates[0]
        baseline = session.exec(
            select(EvalRun)
            .where(
                col(EvalRun.name) == gate_run_name(active),
                col(EvalRun.complete),
                col(EvalRun.dataset_hash) == run.dataset_hash,
            )
            .order_by(col(EvalRun.created_at).desc())
            .limit(1)
        ).first()
    if baseline is None:
        return None
    return compare_runs(
        baseline,
        run,
        settings.tolerances,
        samples=settings.bootstrap_samples,
        level=settings.confidence_level,
    )
