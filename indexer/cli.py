"""`ragline index …`: build a new index version from a folder and promote it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from ragline.knowledge.embedder import Embedder
from ragline.knowledge.versions import IndexManager
from ragline.observability import configure_logging
from ragline.runtime import build_core, build_index_manager, open_store
from ragline.settings import load_settings

app = typer.Typer(
    help="Build, list and promote knowledge-base index versions.", no_args_is_help=True
)


@contextmanager
def _manager() -> Iterator[IndexManager]:
    """An index manager without the embedding model; `build` loads it only when it builds."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    core = build_core(settings)
    store = open_store(settings)
    try:
        yield build_index_manager(core, store, embedder=None)
    finally:
        store.close()
        core.close()


@app.command()
def build(
    folder: Annotated[Path, typer.Argument(help="folder of .md/.txt documents (recursive)")],
    promote: Annotated[bool, typer.Option(help="point the alias at the new version")] = False,
    if_changed: Annotated[
        bool, typer.Option(help="do nothing when the active version has the same sources")
    ] = False,
) -> None:
    """Build a new index version (a new collection kb_vN) from FOLDER."""
    with _manager() as manager:
        if if_changed and (current := manager.unchanged_since_active(folder)) is not None:
            typer.echo(f"v{current.version} is active and up to date with {folder}; nothing to do")
            return
        manager.embedder = Embedder(manager.knowledge.embedding_model)
        manifest = manager.build(folder)
        typer.echo(
            f"built v{manifest.version} ({manifest.collection}): {manifest.document_count} "
            f"documents, {manifest.chunk_count} chunks, {manifest.token_count} tokens "
            f"in {(manifest.duration_ms or 0) / 1000:.1f}s"
        )
        if promote:
            manager.promote(manifest.version)
            typer.echo(f"promoted v{manifest.version} to '{manager.alias}'")


@app.command("promote")
def promote_version(
    version: Annotated[int, typer.Argument(help="version number N of kb_vN")],
) -> None:
    """Point the alias at VERSION."""
    with _manager() as manager:
        manager.promote(version)
        typer.echo(f"promoted v{version} to '{manager.alias}'")


@app.command("list")
def list_versions() -> None:
    """Show every version, its status and counts; * marks the active one."""
    with _manager() as manager:
        listings = manager.list_versions()
        if not listings:
            typer.echo("no index versions yet: run `ragline index build FOLDER --promote`")
            return
        for listing in listings:
            m = listing.manifest
            mark = "*" if listing.active else " "
            typer.echo(
                f"{mark} v{m.version:<4} {m.status:<9} docs={m.document_count:<6} "
                f"chunks={m.chunk_count:<7} created={m.created_at:%Y-%m-%d %H:%M:%S} {m.source}"
            )
