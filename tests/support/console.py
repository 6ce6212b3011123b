"""The `ragline` console script run inside the test process, as a user's shell would run it
(its own environment, the repository as working directory, exit code, stdout and stderr),
without paying a new interpreter, torch and the model per command. Journeys whose point is
the process itself (signals, start-up, a server owning the store) keep using
tests/support/processes.py."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout

import structlog

from cli import main as console_script
from ragline import secret_box
from tests.support.environment import REPO


@contextmanager
def _process_state(env: dict[str, str]) -> Iterator[None]:
    """The environment, working directory, argv and logging of a command, put back after:
    the command configures logging onto the captured streams, which are gone afterwards."""
    environ, cwd, argv = dict(os.environ), os.getcwd(), sys.argv
    keys = secret_box.ring()  # a command's bootstrap configures its own
    structlog_config = structlog.get_config()
    handlers, level = logging.root.handlers[:], logging.root.level
    os.environ.clear()
    os.environ.update(env)
    os.chdir(REPO)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        secret_box.configure(keys)
        os.chdir(cwd)
        sys.argv = argv
        structlog.configure(**structlog_config)
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`ragline ARGS` with exactly `env` as its environment. An exception the console script
    lets through is a traceback on stderr and exit 1, as it would be in a shell."""
    out, err = io.StringIO(), io.StringIO()
    with _process_state(env), redirect_stdout(out), redirect_stderr(err):
        sys.argv = ["ragline", *args]
        try:
            console_script.main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except Exception:  # reported as a shell would show it
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(["ragline", *args], code, out.getvalue(), err.getvalue())
