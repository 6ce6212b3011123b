"""The promote gate's evaluation: the dataset on the active index version and on the
candidate, compared with the configured tolerances. `ragline index promote N --eval FILE`
refuses a candidate that regresses."""

from __future__ import annotations

from ragline.bootstrap import Services
from ragline.errors import InvalidInput
from ragline.evaluation.compare import Comparison, compare_runs
from ragline.evaluation.dataset import EvalItem
from ragline.evaluation.run import run_evaluation
from ragline.variant import Variant


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
            name=f"promote gate v{version}",
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
