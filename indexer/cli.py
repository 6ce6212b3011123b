"""`ragline index …`: build, check, promote, roll back, compare and clean up versions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from indexer.progress import terminal_progress
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.versions import IndexManager
from ragline.models import IndexVersion
from ragline.observability import configure_logging
from ragline.runtime import build_core, build_index_manager, open_store
from ragline.settings import load_settings

app = typer.Typer(
    help="Build, check, promote, roll back and clean up knowledge-base index versions.",
    no_args_is_help=True,
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


def _describe(m: IndexVersion) -> str:
    checks = m.checks or {}
    verdict = "checks passed" if checks.get("passed") else "CHECKS FAILED"
    smoke = checks.get("smoke", {})
    rate = f", smoke hit rate {smoke['hit_rate']:.0%}" if "hit_rate" in smoke else ""
    return (
        f"v{m.version} ({m.collection}): {m.document_count} documents, {m.chunk_count} chunks "
        f"({m.reused_chunks} reused, {m.embedded_chunks} embedded), {m.token_count} tokens "
        f"in {(m.duration_ms or 0) / 1000:.1f}s; {verdict}{rate}"
    )


@app.command()
def build(
    folder: Annotated[Path, typer.Argument(help="folder of documents (recursive)")],
    promote: Annotated[bool, typer.Option(help="promote the new version if it passes")] = False,
    if_changed: Annotated[
        bool, typer.Option(help="do nothing when the active version has the same sources")
    ] = False,
) -> None:
    """Build a new index version (collection kb_vN) from FOLDER, reusing unchanged vectors."""
    with _manager() as manager:
        if if_changed and (current := manager.unchanged_since_active(folder)) is not None:
            typer.echo(f"v{current.version} is active and up to date with {folder}; nothing to do")
            return
        manager.embedder = Embedder(manager.knowledge.embedding_model)
        with terminal_progress(sys.stderr) as progress:
            manifest = manager.build(folder, progress=progress)
        typer.echo(f"built {_describe(manifest)}")
        for failure in manifest.checks.get("failures", []):
            typer.echo(f"  check failed: {failure}", err=True)
        if promote:
            manager.promote(manifest.version)
            typer.echo(f"promoted v{manifest.version} to '{manager.alias}'")


@app.command("promote")
def promote_version(
    version: Annotated[int, typer.Argument(help="version number N of kb_vN")],
    force: Annotated[bool, typer.Option(help="promote although the checks failed")] = False,
    reason: Annotated[str, typer.Option(help="why (required with --force; recorded)")] = "",
) -> None:
    """Point the alias at VERSION (it must have passed its checks, or --force --reason)."""
    with _manager() as manager:
        manager.promote(version, force=force, reason=reason)
        typer.echo(f"promoted v{version} to '{manager.alias}'")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="why (recorded)")] = "",
) -> None:
    """Point the alias back at the version it pointed at before."""
    with _manager() as manager:
        manifest = manager.rollback(reason=reason)
        typer.echo(f"rolled back: '{manager.alias}' now points at v{manifest.version}")


@app.command("list")
def list_versions() -> None:
    """Show every version, its status, counts and checks; * marks the active one."""
    with _manager() as manager:
        listings = manager.list_versions()
        if not listings:
            typer.echo("no index versions yet: run `ragline index build FOLDER --promote`")
            return
        for listing in listings:
            m = listing.manifest
            mark = "*" if listing.active else " "
            checks = "-" if not m.checks else ("pass" if m.checks.get("passed") else "FAIL")
            typer.echo(
                f"{mark} v{m.version:<4} {m.status:<9} checks={checks:<4} "
                f"docs={m.document_count:<6} chunks={m.chunk_count:<7} "
                f"reused={m.reused_chunks:<7} created={m.created_at:%Y-%m-%d %H:%M:%S} {m.source}"
            )


@app.command()
def diff(
    a: Annotated[int, typer.Argument(help="older version")],
    b: Annotated[int, typer.Argument(help="newer version")],
) -> None:
    """Documents added, removed and changed from version A to version B."""
    with _manager() as manager:
        changes = manager.diff(a, b)
        for mark, documents in (
            ("+", changes.added),
            ("-", changes.removed),
            ("~", changes.changed),
        ):
            for document in documents:
                typer.echo(f"{mark} {document}")
        typer.echo(
            f"v{a} -> v{b}: {len(changes.added)} added, {len(changes.removed)} removed, "
            f"{len(changes.changed)} changed",
            err=True,
        )


@app.command()
def gc(
    keep: Annotated[int, typer.Option(min=1, help="newest ready versions to keep")] = 3,
) -> None:
    """Drop old, failed and abandoned versions' collections; never the active or previous."""
    with _manager() as manager:
        dropped = manager.gc(keep)
        typer.echo(
            f"dropped {', '.join(f'v{v}' for v in dropped)}" if dropped else "nothing to drop"
        )
