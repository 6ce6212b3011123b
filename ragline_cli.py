"""The `ragline` console script. Each subcommand lives with its adapter."""

from __future__ import annotations

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
COMMANDS = ("serve", "worker", "index", "accounts", "keys", "prompts", "eval", "usage", "replay")


def _register(app: typer.Typer, name: str) -> None:
    """Import one subcommand's module (some pull in torch, Qdrant, Presidio) and add it."""
    if name == "serve":
        from api.cli import serve

        app.command()(serve)
    elif name == "worker":
        from workers.cli import worker

        app.command()(worker)
    elif name == "index":
        from indexer.cli import app as index_app

        app.add_typer(index_app, name="index")
    elif name == "accounts":
        from api.admin_cli import accounts_app

        app.add_typer(accounts_app, name="accounts")
    elif name == "keys":
        from api.admin_cli import keys_app

        app.add_typer(keys_app, name="keys")
    elif name == "usage":
        from api.admin_cli import usage

        app.command()(usage)
    elif name == "prompts":
        from api.prompts_cli import prompts_app

        app.add_typer(prompts_app, name="prompts")
    elif name == "eval":
        from api.eval_cli import eval_app

        app.add_typer(eval_app, name="eval")
    elif name == "replay":
        from api.replay_cli import replay_command

        app.command("replay")(replay_command)


def _group() -> None:
    # A callback keeps the app a group (`ragline keys create`) with one command registered.
    pass


def build_app(command: str | None = None) -> typer.Typer:
    """The CLI with every subcommand, or with only `command`: a short command such as
    `ragline keys create` then starts in a fraction of the time, without loading the
    modules of the others."""
    app = typer.Typer(help=HELP, pretty_exceptions_enable=False)
    app.callback()(_group)
    for name in COMMANDS if command not in COMMANDS else (command,):
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
