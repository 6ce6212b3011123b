"""`ragline calibrate DATASET`: refit the decision scorer and its threshold on labelled
questions (README "The decision")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.services import open_services
from ragline.bootstrap import Mode, scorer_path
from ragline.decision.calibrate import Calibration, calibrate, labelled
from ragline.evaluation.dataset import load_dataset
from ragline.observability import configure_logging
from ragline.settings import load_settings


def calibrate_command(
    dataset: Annotated[
        Path, typer.Argument(help="an evaluation dataset or the reviewers' export (JSONL)")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="answer with this models-table name; its threshold is stored for it"),
    ] = None,
    feature: Annotated[
        str | None, typer.Option(help="store the threshold for jobs of this feature only")
    ] = None,
    kind: Annotated[str, typer.Option(help="logistic or trees")] = "logistic",
    keep_weights: Annotated[
        bool, typer.Option(help="only choose the threshold again, on the current scorer")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="where to write the artifact (default: the configured scorer's file)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="print the figures, write nothing")] = False,
) -> None:
    """Ask every labelled question (expected: answered or escalated) through the pipeline,
    fit the scorer on the signals it measured and choose the threshold that still answers
    decision.target_answered of the answerable ones; print the trade-off and the expected
    calibration error, and write the artifact. Processes load it at start-up. Needs the
    vector store: stop an embedded server first (Qdrant local mode has one owner)."""
    settings = load_settings()
    configure_logging("WARNING", settings.log_format)
    if kind not in ("logistic", "trees"):
        raise typer.BadParameter("--kind must be logistic or trees")
    items = load_dataset(dataset)
    labelled(items)  # refused here, before the model and the index are loaded
    with open_services(Mode.EVALUATE) as services:
        result = calibrate(
            services,
            items,
            dataset=str(dataset),
            model=model,
            feature=feature,
            kind=kind,
            keep_weights=keep_weights,
            on_item=_progress,
        )
        target = out or scorer_path(services.settings, services.config)
    typer.echo("", err=True)
    typer.echo(describe(result))
    if dry_run:
        typer.echo("dry run: nothing written")
        return
    result.scorer.save(target)
    typer.echo(f"wrote {target}: {result.scorer.version} (was {result.previous.version})")


def describe(result: Calibration) -> str:
    lines = [
        f"items: {result.answerable} answerable, {result.unanswerable} unanswerable "
        f"(evaluation run {result.run_id})",
        f"AUROC {result.auroc:.3f}   expected calibration error {result.ece:.3f}",
        "",
        "threshold  answerable answered  unanswerable escalated  answered that were answerable",
    ]
    for point in result.curve[::5]:
        mark = "  <- chosen" if abs(point.threshold - result.threshold) < 1e-9 else ""
        lines.append(
            f"  {point.threshold:5.2f}    {point.answered:8.1%}             {point.escalated:8.1%}"
            f"                 {point.precision:8.1%}{mark}"
        )
    b, a = result.before, result.after
    lines += [
        "",
        f"chosen threshold {result.threshold:.2f}",
        f"before ({result.previous.version}, threshold {b['threshold']:.2f}): answered "
        f"{b['answered']:.1%} of answerable, escalated {b['escalated']:.1%} of unanswerable, "
        f"AUROC {b['auroc']:.3f}",
        f"after: answered {a['answered']:.1%}, escalated {a['escalated']:.1%}, "
        f"AUROC {a['auroc']:.3f}",
    ]
    return "\n".join(lines)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total:
        typer.echo(f"\r{done}/{total} asked", err=True, nl=done == total)
