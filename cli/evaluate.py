"""`ragline eval run|list|show|compare|report|import-beir`: evaluation runs and the gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.services import open_services
from ragline.bootstrap import Mode
from ragline.evaluation.compare import compare_runs, format_table
from ragline.evaluation.dataset import import_beir, load_dataset
from ragline.evaluation.report import render_report
from ragline.evaluation.run import export_run, list_runs, load_run, run_evaluation
from ragline.evaluation.summary import BY_NAME
from ragline.models import EvalRun
from ragline.observability import configure_logging
from ragline.settings import load_settings
from ragline.variant import Variant

eval_app = typer.Typer(
    help="Evaluate prompt, model and index versions on a dataset; compare runs; report.",
    no_args_is_help=True,
)


@eval_app.callback()
def _quiet(
    verbose: Annotated[bool, typer.Option(help="log every stage of every item")] = False,
) -> None:
    """Runs log at WARNING unless --verbose: a few hundred items would bury the result."""
    settings = load_settings()
    configure_logging("DEBUG" if verbose else "WARNING", settings.log_format)


REGRESSION_EXIT = 1
INCOMPLETE_EXIT = 3  # not 2: that is a usage error


@eval_app.command("run")
def run(
    dataset: Annotated[Path, typer.Argument(help="a JSONL dataset (README 'Evaluation')")],
    prompt: Annotated[
        str | None, typer.Option(help="NAME or NAME@HASH (default: the configured template)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="a models-table name")] = None,
    index: Annotated[
        int | None, typer.Option(help="an index version number (default: the promoted one)")
    ] = None,
    top_k: Annotated[int | None, typer.Option(min=1, max=100, help="passages per question")] = None,
    scorer: Annotated[
        str | None, typer.Option(help="a decision scorer: NAME under scorers/ or a .json path")
    ] = None,
    name: Annotated[str, typer.Option(help="a label for the run")] = "",
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N items")] = None,
    out: Annotated[Path | None, typer.Option(help="also write the run as JSON here")] = None,
) -> None:
    """Run every question through the real pipeline and store the run. Nothing is queued,
    delivered or sent to review; spend is charged to evaluation.budget only. Needs the
    vector store: stop an embedded server first (Qdrant local mode has one owner)."""
    items = load_dataset(dataset)[:limit]
    with open_services(Mode.EVALUATE) as services:
        result = run_evaluation(
            services,
            items,
            dataset=str(dataset),
            variant=Variant(prompt=prompt, model=model, index=index, top_k=top_k, scorer=scorer),
            name=name,
            on_item=_progress,
        )
    typer.echo("", err=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)  # `--out data/run.json` on a clean clone
        out.write_text(export_run(result), encoding="utf-8")
    typer.echo(_summary(result))
    if not result.complete:
        typer.echo(f"incomplete: {result.note}", err=True)
        raise typer.Exit(code=INCOMPLETE_EXIT)


@eval_app.command("list")
def list_command(limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """The latest runs, newest first."""
    with open_services() as services:
        runs = list_runs(services, limit)
    if not runs:
        typer.echo("no evaluation runs yet: `ragline eval run eval/guardrails.jsonl`")
    for r in runs:
        s = r.subject
        state = "" if r.complete else "  (incomplete)"
        typer.echo(
            f"{r.id}  {r.created_at:%Y-%m-%d %H:%M}  {r.name or '-':<16} {len(r.items):>4} items  "
            f"{s.get('prompt_version')}  {s.get('model')}  {s.get('index_version')}  "
            f"top_k {s.get('top_k')}  {r.dataset}{state}"
        )


@eval_app.command("show")
def show(
    reference: Annotated[str, typer.Argument(help="a run id or an exported run .json")],
    as_json: Annotated[bool, typer.Option("--json", help="the whole run as JSON")] = False,
) -> None:
    """A run's summary (or all of it, with --json)."""
    with open_services() as services:
        result = load_run(services, reference)
    typer.echo(export_run(result) if as_json else _summary(result))


@eval_app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="the baseline: a run id or exported .json")],
    run_b: Annotated[str, typer.Argument(help="the candidate")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Deltas B - A with paired bootstrap intervals. Exits 1 when a metric regresses beyond
    its tolerance (config evaluation.tolerances): run it in CI before a model, prompt or
    index change is promoted."""
    with open_services() as services:
        a, b = load_run(services, run_a), load_run(services, run_b)
        settings = services.config.evaluation
    comparison = compare_runs(
        a,
        b,
        settings.tolerances,
        samples=settings.bootstrap_samples,
        level=settings.confidence_level,
    )
    typer.echo(json.dumps(comparison.as_dict(), indent=2) if as_json else format_table(comparison))
    if comparison.regressions:
        raise typer.Exit(code=REGRESSION_EXIT)


@eval_app.command("report")
def report(
    runs: Annotated[list[str], typer.Argument(help="run ids or exported .json files")],
    html: Annotated[Path, typer.Option("--html", help="where to write the report")],
) -> None:
    """A self-contained HTML report: metric bars with intervals, latency distribution,
    per-tag breakdown, each run compared with the first."""
    with open_services() as services:
        loaded = [load_run(services, r) for r in runs]
        settings = services.config.evaluation
    page = render_report(
        loaded,
        settings.tolerances,
        samples=settings.bootstrap_samples,
        level=settings.confidence_level,
    )
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(page, encoding="utf-8")
    typer.echo(f"wrote {html} ({len(page) // 1024} KiB, {len(loaded)} runs)")


@eval_app.command("import-beir")
def import_beir_command(
    folder: Annotated[Path, typer.Argument(help="a BEIR folder: queries.jsonl, qrels/")],
    out: Annotated[Path, typer.Option(help="the JSONL dataset to write")],
    split: Annotated[str, typer.Option(help="the qrels split")] = "test",
) -> None:
    """Turn a BEIR benchmark's judged queries into an evaluation dataset. Index its
    corpus.jsonl with `ragline index build` to evaluate retrieval on it."""
    items = import_beir(folder, split)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(item.model_dump_json(exclude_defaults=True) + "\n")
    typer.echo(f"wrote {len(items)} judged {split} queries to {out}")


def _summary(result: EvalRun) -> str:
    s = result.subject
    lines = [
        f"run {result.id} {result.name}".rstrip(),
        f"  dataset {result.dataset} ({len(result.items)} items, {result.dataset_hash})",
        f"  prompt {s.get('prompt_version')}  model {s.get('model')} ({s.get('model_id')})  "
        f"index {s.get('index_version')}  top_k {s.get('top_k')} {s.get('retrieval_mode')}",
        "  outcomes "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.summary.get("outcomes", {}).items())),
    ]
    for metric, entry in result.summary.get("metrics", {}).items():
        label = BY_NAME[metric].label if metric in BY_NAME else metric
        lines.append(f"  {metric:<18} {entry['value']:>10.4f}   n={entry['n']:<5} {label}")
    lines.append(f"  total cost {result.summary.get('total_cost', 0):.6f}")
    return "\n".join(lines)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total or done % 50 == 0:
        print(f"\r  {done}/{total}", end="", file=sys.stderr, flush=True)
