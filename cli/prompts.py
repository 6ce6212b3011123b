"""`ragline prompts list|show|diff`: the prompt templates and their recorded versions."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.services import open_services
from ragline import prompt_registry

prompts_app = typer.Typer(help="Prompt templates and their versions.", no_args_is_help=True)


@prompts_app.command("list")
def list_prompts(name: Annotated[str | None, typer.Argument(help="one template")] = None) -> None:
    """Every version seen of each template, oldest first; * marks the file as it is now."""
    with open_services() as services:
        now = {t.version for t in prompt_registry.current(services.settings.prompts_dir)}
        for template in prompt_registry.current(services.settings.prompts_dir):
            prompt_registry.record(services.engine, template)
        for version in prompt_registry.versions(services.engine, name):
            mark = "*" if version.version in now else " "
            typer.echo(
                f"{mark} {version.version:<40} first seen {version.first_seen_at:%Y-%m-%d %H:%M}"
            )


@prompts_app.command("show")
def show(
    reference: Annotated[str, typer.Argument(help="NAME (the file now) or NAME@HASH")],
) -> None:
    """Print a template version's source."""
    with open_services() as services:
        typer.echo(
            prompt_registry.resolve(
                services.engine, services.settings.prompts_dir, reference
            ).content,
            nl=False,
        )


@prompts_app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="NAME@HASH")],
    new: Annotated[str, typer.Argument(help="NAME (the file now) or NAME@HASH")],
) -> None:
    """A unified diff between two versions."""
    with open_services() as services:
        folder = services.settings.prompts_dir
        a = prompt_registry.resolve(services.engine, folder, old)
        b = prompt_registry.resolve(services.engine, folder, new)
        changes = prompt_registry.diff(a, b)
        typer.echo(
            changes or f"no difference: {a.version} and {b.version} are the same text",
            nl=not changes,
        )
