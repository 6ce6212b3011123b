"""The `ragline` console script. Each subcommand lives with its adapter."""

from __future__ import annotations

import importlib
import sys

import typer

from ragline.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RaglineError,
    TransientError,
    Unauthenticated,
)

HELP = "ragline: a RAG backend of queued, reviewed, traceable answers."


# Each subcommand: its module, the object in it, and whether that is a command or a group.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("cli.serve", "serve", "command"),
    "worker": ("cli.worker", "worker", "command"),
    "index": ("cli.index", "app", "group"),
    "accounts": ("cli.admin", "accounts_app", "group"),
    "keys": ("cli.admin", "keys_app", "group"),
    "prompts": ("cli.prompts", "prompts_app", "group"),
    "eval": ("cli.evaluate", "eval_app", "group"),
    "usage": ("cli.admin", "usage", "command"),
    "replay": ("cli.replay", "replay_command", "command"),
    "calibrate": ("cli.calibrate", "calibrate_command", "command"),
    "db": ("cli.db", "db_app", "group"),
    "audit": ("cli.audit", "audit_app", "group"),
    "erase": ("cli.audit", "erase_command", "command"),
    "cache": ("cli.cache", "cache_app", "group"),
}


def _register(app: typer.Typer, name: str) -> None:
    """Import one subcommand's module (some pull in torch, Qdrant, Presidio) and add it."""
    module, attribute, kind = SUBCOMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if kind == "group":
        app.add_typer(target, name=name)
    else:
        app.command(name)(target)


def _group() -> None:
    # A callback keeps the app a group (`ragline keys create`) with one command registered.
    pass


def build_app(command: str | None = None) -> typer.Typer:
    """The CLI with every subcommand, or with only `command`: a short command such as
    `ragline keys create` then starts in a fraction of the time, without loading the
    modules of the others."""
    app = typer.Typer(help=HELP, pretty_exceptions_enable=False, rich_markup_mode="markdown")
    app.callback()(_group)
    for name in SUBCOMMANDS if command not in SUBCOMMANDS else (command,):
        _register(app, name)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole CLI, e.g. for tests/unit/test_compose.py
        return build_app()
    raise AttributeError(name)


EXIT_CODES: dict[type[RaglineError], int] = {
    ConfigError: 78,  # EX_CONFIG
    InvalidInput: 65,  # EX_DATAERR
    NotFound: 66,  # EX_NOINPUT
    TransientError: 75,  # EX_TEMPFAIL
    Conflict: 73,  # EX_CANTCREAT
    Unauthenticated: 77,  # EX_NOPERM
    Forbidden: 77,
}


def main() -> None:
    try:
        build_app(sys.argv[1] if len(sys.argv) > 1 else None)(standalone_mode=True)
    except RaglineError as error:
        code = next((c for t, c in EXIT_CODES.items() if isinstance(error, t)), 1)
        print(f"ragline: error: {error}", file=sys.stderr)
        sys.exit(code)


if __name__ == "__main__":
    main()
