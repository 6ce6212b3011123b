"""`ragline index …`: build, check, promote, roll back, compare and clean up versions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.services import open_services
from indexer.progress import terminal_progress
from indexer.remote import IndexServer
from ragline.audit import Actor
from ragline.bootstrap import Mode, Services, bootstrap
from ragline.errors import InvalidInput, StoreBusy
from ragline.evaluation.compare import format_table
from ragline.evaluation.dataset import EvalItem, load_dataset
from ragline.evaluation.gate import evaluate_candidate
from ragline.knowledge.catalog import recorded_versions
from ragline.knowledge.versions import IndexManager, VersionDiff, VersionListing
from ragline.models import IndexVersion
from ragline.observability import configure_logging
from ragline.settings import load_settings

app = typer.Typer(
    help="Build, check, promote, roll back and clean up knowledge-base index versions.",
    no_args_is_help=True,
)


ViaServer = Annotated[
    bool,
    typer.Option(
        "--via-server",
        help="run it in the server that owns the store (embedded mode); needs RAGLINE_KEY",
    ),
]
ServerUrl = Annotated[
    str | None, typer.Option("--server", help="default http://RAGLINE_HOST:RAGLINE_PORT")
]
Key = Annotated[
    str | None, typer.Option("--key", envvar="RAGLINE_KEY", help="a key with the indexer role")
]


def _server(url: str | None, key: str | None) -> IndexServer:
    settings = load_settings()
    return IndexServer(url or f"http://{settings.host}:{settings.port}", key)


VIA_SERVER_HINT = (
    "The running server can do it: add --via-server (with RAGLINE_KEY set to a key with the "
    "indexer role, e.g. the demo key in the data folder; --server or RAGLINE_PORT if it is "
    "not on the default port)"
)


@contextmanager
def _services(mode: Mode = Mode.INDEX, hint: str = VIA_SERVER_HINT) -> Iterator[Services]:
    """The index commands' objects (the embedding model loads only when a build needs it,
    or up front in Mode.EVALUATE for the promote gate). `hint` says what to do when
    another process (the server) holds the store."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        services = bootstrap(settings, mode)
    except StoreBusy as error:
        raise StoreBusy(f"{error}. {hint}") from None
    try:
        yield services
    finally:
        services.close()


@contextmanager
def _manager(hint: str = VIA_SERVER_HINT) -> Iterator[IndexManager]:
    with _services(hint=hint) as services:
        assert services.index is not None
        yield services.index


def _describe(m: IndexVersion | dict[str, Any]) -> str:
    if isinstance(m, dict):
        m = IndexVersion.model_validate(m)
    checks = m.checks or {}
    verdict = "checks passed" if checks.get("passed") else "CHECKS FAILED"
    smoke = checks.get("smoke", {})
    rate = f", smoke hit rate {smoke['hit_rate']:.0%}" if "hit_rate" in smoke else ""
    if "skipped" in smoke:
        rate = ", no smoke set"
    return (
        f"v{m.version} ({m.collection}): {m.document_count} documents, {m.chunk_count} chunks "
        f"({m.reused_chunks} reused, {m.embedded_chunks} embedded), {m.token_count} tokens "
        f"in {(m.duration_ms or 0) / 1000:.1f}s; {verdict}{rate}"
    )


def _active_from_elsewhere(manager: IndexManager, folder: Path) -> IndexVersion | None:
    active = manager.active_version()
    if active is None:
        return None
    manifest = manager.get(active)
    return manifest if manifest.source != str(folder.resolve()) else None


def _report_checks(checks: dict[str, Any]) -> None:
    """Each failed check, and what was not checked and why (stderr)."""
    for failure in checks.get("failures", []):
        typer.echo(f"  check failed: {failure}", err=True)
    if str(checks.get("corpus", "")).startswith("new corpus"):
        typer.echo(f"  note: {checks['corpus']}", err=True)
    if skipped := checks.get("smoke", {}).get("skipped"):
        typer.echo(f"  note: {skipped}", err=True)


@app.command()
def build(
    folder: Annotated[Path, typer.Argument(help="folder of documents (recursive)")],
    promote: Annotated[bool, typer.Option(help="promote the new version if it passes")] = False,
    if_changed: Annotated[
        bool, typer.Option(help="do nothing when the active version has the same sources")
    ] = False,
    keep_other: Annotated[
        bool,
        typer.Option(
            help="do nothing when the active version was built from another folder "
            "(make run keeps a knowledge base you promoted)"
        ),
    ] = False,
    smoke: Annotated[
        Path | None,
        typer.Option(
            help="the smoke questions to check the build with (default: FOLDER/smoke.yaml)"
        ),
    ] = None,
    via_server: ViaServer = False,
    server: ServerUrl = None,
    key: Key = None,
) -> None:
    """Build a new index version (collection kb_vN) from FOLDER, reusing unchanged vectors,
    and check it: not empty, no large drop in documents, the corpus's smoke questions."""
    if via_server:
        if smoke is not None:
            raise InvalidInput(
                "--smoke is read here, not by the server: put smoke.yaml beside the "
                "documents or drop --via-server"
            )
        built = _server(server, key).build(str(folder.resolve()), promote)
        typer.echo(f"built {_describe(built)}")
        _report_checks(built.get("checks", {}))
        if built.get("active"):
            typer.echo(f"promoted v{built['version']}")
        return
    with _manager() as manager:
        if keep_other and (other := _active_from_elsewhere(manager, folder)) is not None:
            typer.echo(
                f"v{other.version} is active, built from {other.source}: kept. "
                f"`ragline index build {folder} --promote` would replace it"
            )
            return
        if if_changed and (current := manager.unchanged_since_active(folder)) is not None:
            typer.echo(f"v{current.version} is active and up to date with {folder}; nothing to do")
            return
        with terminal_progress(sys.stderr) as progress:
            manifest = manager.build(folder, progress=progress, smoke=smoke, actor=Actor.operator())
        typer.echo(f"built {_describe(manifest)}")
        _report_checks(manifest.checks)
        if promote:
            manager.promote(manifest.version, actor=Actor.operator())
            typer.echo(f"promoted v{manifest.version} to '{manager.alias}'")


@app.command("promote")
def promote_version(
    version: Annotated[int, typer.Argument(help="version number N of kb_vN")],
    force: Annotated[bool, typer.Option(help="promote although the checks failed")] = False,
    reason: Annotated[str, typer.Option(help="why (required with --force; recorded)")] = "",
    dataset: Annotated[
        Path | None,
        typer.Option("--eval", help="an evaluation dataset the candidate must not regress on"),
    ] = None,
    via_server: ViaServer = False,
    server: ServerUrl = None,
    key: Key = None,
) -> None:
    """Point the alias at VERSION (it must have passed its checks, or --force --reason).
    With --eval DATASET the candidate must also not regress against the active version on
    that dataset (`ragline eval compare` semantics and tolerances)."""
    if via_server:
        if dataset is not None:
            raise InvalidInput("--eval runs here, not in the server; drop --via-server")
        _server(server, key).promote(version, force, reason)
        typer.echo(f"promoted v{version}")
        return
    items = load_dataset(dataset) if dataset is not None else None
    # The gate asks its questions through the pipeline: that needs the embedding model.
    with _services(Mode.INDEX if items is None else Mode.EVALUATE) as services:
        manager = services.index
        assert manager is not None
        checks_passed = bool(manager.get(version).checks.get("passed"))
        # Failed checks refuse the promotion below without the (slower) evaluation.
        if items is not None and dataset is not None and (checks_passed or force):
            _evaluation_gate(services, items, str(dataset), version, force, reason)
        manager.promote(version, force=force, reason=reason, actor=Actor.operator())
        typer.echo(f"promoted v{version} to '{manager.alias}'")


def _evaluation_gate(
    services: Services,
    items: list[EvalItem],
    dataset: str,
    version: int,
    force: bool,
    reason: str,
) -> None:
    comparison = evaluate_candidate(services, items, dataset, version)
    if comparison is None:
        typer.echo("no active version to compare with: the evaluation gate passes", err=True)
        return
    typer.echo(format_table(comparison), err=True)
    regressed = ", ".join(d.metric.name for d in comparison.regressions)
    if not regressed:
        return
    if not force:
        raise InvalidInput(
            f"v{version} regresses on {dataset} ({regressed}; runs {comparison.a.id} and "
            f"{comparison.b.id}). Promote anyway with --force --reason '…'"
        )
    if not reason.strip():
        raise InvalidInput("--force needs --reason: it is recorded with the promotion")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="why (recorded)")] = "",
    via_server: ViaServer = False,
    server: ServerUrl = None,
    key: Key = None,
) -> None:
    """Point the alias back at the version it pointed at before."""
    if via_server:
        restored = _server(server, key).rollback(reason)
        typer.echo(f"rolled back: the alias now points at v{restored['version']}")
        return
    with _manager() as manager:
        manifest = manager.rollback(reason=reason, actor=Actor.operator())
        typer.echo(f"rolled back: '{manager.alias}' now points at v{manifest.version}")


@app.command("list")
def list_versions(via_server: ViaServer = False, server: ServerUrl = None, key: Key = None) -> None:
    """Show every version, its status, counts and checks; * marks the active one."""
    if via_server:
        rows = _server(server, key).versions()
        listings = [VersionListing(IndexVersion.model_validate(r), bool(r["active"])) for r in rows]
        _print_versions(listings)
        return
    try:
        with _manager() as manager:
            listings = manager.list_versions()
    except StoreBusy:
        # Read-only: the database has every manifest and promotion, the store is not needed.
        with open_services() as services:
            listings = recorded_versions(services.engine)
        typer.echo(
            "the store is open in another process (the server): the active version is the "
            "last one promoted or rolled back to",
            err=True,
        )
    _print_versions(listings)


def _print_versions(listings: list[VersionListing]) -> None:
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
    via_server: ViaServer = False,
    server: ServerUrl = None,
    key: Key = None,
) -> None:
    """Documents added, removed and changed from version A to version B."""
    if via_server:
        found = _server(server, key).diff(a, b)
        changes = VersionDiff(found["added"], found["removed"], found["changed"])
    else:
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
    force: Annotated[
        bool, typer.Option(help="also drop versions recent jobs were answered from")
    ] = False,
    reason: Annotated[str, typer.Option(help="why (required with --force; logged)")] = "",
) -> None:
    """Drop old, failed and abandoned versions' collections; never the active or previous
    one, nor one that jobs of the last knowledge.keep_cited_days were answered from (unless
    --force --reason)."""
    # The server has no route for it: collections are dropped by the process that owns them.
    with _manager(
        hint="Stop the server first: gc runs only in the process that owns the store"
    ) as manager:
        dropped = manager.gc(keep, force=force, reason=reason, actor=Actor.operator())
        typer.echo(
            f"dropped {', '.join(f'v{v}' for v in dropped)}" if dropped else "nothing to drop"
        )
