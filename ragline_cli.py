"""The `ragline` console script. Each subcommand lives with its adapter."""

from __future__ import annotations

import sys

import typer

from api.admin_cli import accounts_app, keys_app, usage
from api.cli import serve
from api.eval_cli import eval_app
from api.prompts_cli import prompts_app
from api.replay_cli import replay_command
from indexer.cli import app as index_app
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
from workers.cli import worker

app = typer.Typer(
    help="ragline: a RAG backend of queued, reviewed, traceable answers.",
    pretty_exceptions_enable=False,
)
app.command()(serve)
app.command()(worker)
app.add_typer(index_app, name="index")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(prompts_app, name="prompts")
app.add_typer(eval_app, name="eval")
app.command()(usage)
app.command("replay")(replay_command)

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
        app(standalone_mode=True)
    except RaglineError as error:
        code = next((c for t, c in EXIT_CODES.items() if isinstance(error, t)), 1)
        print(f"ragline: error: {error}", file=sys.stderr)
        sys.exit(code)


if __name__ == "__main__":
    main()
