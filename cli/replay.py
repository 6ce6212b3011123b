"""`ragline replay JOB_ID`: the job's question through another prompt, model or index."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.services import open_services
from ragline.bootstrap import Mode
from ragline.replay import original, replay


def replay_command(
    job_id: Annotated[str, typer.Argument(help="a stored job")],
    prompt: Annotated[
        str | None, typer.Option(help="NAME or NAME@HASH (default: the job's own)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="a models-table name")] = None,
    index: Annotated[int | None, typer.Option(help="an index version number")] = None,
    scorer: Annotated[
        str | None, typer.Option(help="a decision scorer: NAME under scorers/ or a .json path")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Run a stored job again with another prompt version, model or index version and show
    both runs side by side. Nothing is stored or delivered; no budget is charged. Needs the
    vector store: stop an embedded server first (Qdrant local mode has one owner)."""
    with open_services(Mode.EVALUATE) as services:
        job = services.jobs.get(job_id)
        again = replay(services, job, prompt=prompt, model=model, index=index, scorer=scorer)
    before = original(job)
    if as_json:
        typer.echo(json.dumps({"job": before.as_dict(), "replay": again.as_dict()}, indent=2))
        return
    old_run, new_run = before.as_dict(), again.as_dict()
    typer.echo(f"  {'':<16} {'the job':<44} the replay   (* differs)")
    for field in (
        "status",
        "reason",
        "prompt_version",
        "model_id",
        "index_version",
        "scorer_version",
        "confidence",
        "cited_documents",
    ):
        old, new = old_run[field], new_run[field]
        mark = " " if old == new else "*"
        typer.echo(f"{mark} {field:<16} {old!s:<44} {new!s}")
    typer.echo(f"  {'cost':<16} {'':<44} {again.cost:.6f}")
    typer.echo("\n--- job's answer\n" + (before.answer or "(none)"))
    typer.echo("\n+++ replay's answer\n" + (again.answer or "(none)"))
