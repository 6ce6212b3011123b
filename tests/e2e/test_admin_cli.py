"""`ragline accounts|keys|usage` as an operator runs them (in-process: tests/support/console.py)
on a fresh data folder (SQLite), checked through their output, exit codes and the database."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from sqlmodel import Session

from ragline.accounts import Accounts
from ragline.db import make_engine
from ragline.errors import Unauthenticated
from ragline.models import UsageRecord
from tests.support.console import run_cli
from tests.support.processes import ragline_env

KEY_LINE = re.compile(r"^rl_[0-9a-f]+_[A-Za-z0-9_-]+$")


def _plain(text: str) -> str:
    """CLI error text with any box drawing and line wrapping flattened to single spaces."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("admin-cli")
    created = run_cli("accounts", "create", "acme", env=ragline_env(data_dir))
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created account acme (")
    return data_dir


def ragline(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=ragline_env(data_dir))


def _accounts(data_dir: Path) -> Accounts:
    return Accounts(make_engine(f"sqlite:///{data_dir / 'ragline.db'}"))


def _key_line(listing: str, key_id: str) -> str:
    lines = [line for line in listing.splitlines() if line.startswith(key_id)]
    assert len(lines) == 1, listing
    return lines[0]


def test_a_duplicate_account_exits_73_and_says_so(data_dir: Path) -> None:
    again = ragline(data_dir, "accounts", "create", "acme")
    assert again.returncode == 73, (again.stdout, again.stderr)
    assert "account 'acme' already exists" in again.stderr
    listing = ragline(data_dir, "accounts", "list")
    assert listing.returncode == 0, listing.stderr
    assert [line.split()[0] for line in listing.stdout.splitlines()] == ["acme"]


def test_an_invalid_account_name_exits_65(data_dir: Path) -> None:
    bad = ragline(data_dir, "accounts", "create", "Bad Name")
    assert bad.returncode == 65, (bad.stdout, bad.stderr)
    assert "account names are" in bad.stderr
    assert "Bad Name" not in ragline(data_dir, "accounts", "list").stdout


def test_the_webhook_secret_is_printed_and_rotated(data_dir: Path) -> None:
    shown = ragline(data_dir, "accounts", "webhook-secret", "acme")
    assert shown.returncode == 0, shown.stderr
    secret = shown.stdout.strip()
    assert (
        secret.startswith("whsec_") and secret == _accounts(data_dir).account("acme").webhook_secret
    )
    rotated = ragline(data_dir, "accounts", "webhook-secret", "acme", "--rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() not in ("", secret)
    assert ragline(data_dir, "accounts", "webhook-secret", "nobody").returncode == 66


def test_keys_create_list_revoke(data_dir: Path) -> None:
    created = ragline(
        data_dir,
        "keys",
        "create",
        "--account",
        "acme",
        "--role",
        "submitter",
        "--role",
        "reviewer",
        "--group",
        "sales",
        "--name",
        "crm",
    )
    assert created.returncode == 0, created.stderr
    # stdout is the key alone, so that `KEY=$(ragline keys create …)` works.
    assert len(created.stdout.splitlines()) == 1
    plaintext = created.stdout.strip()
    assert KEY_LINE.match(plaintext), created.stdout
    assert plaintext not in created.stderr
    assert "cannot be shown again" in created.stderr

    accounts = _accounts(data_dir)
    principal = accounts.authenticate(plaintext)
    assert principal.account_name == "acme"
    assert principal.roles == {"submitter", "reviewer"}
    assert principal.groups == ("sales",)
    key_id = principal.key_id
    secret = plaintext.split("_", 2)[2]

    listing = ragline(data_dir, "keys", "list")
    assert listing.returncode == 0, listing.stderr
    line = _key_line(listing.stdout, key_id)
    assert line.split()[1:3] == ["acme", "active"], line
    assert "reviewer,submitter" in line and "groups=sales" in line and "crm" in line
    assert secret not in listing.stdout and plaintext not in listing.stdout

    revoked = ragline(data_dir, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"revoked {key_id}"
    listing = ragline(data_dir, "keys", "list", "--account", "acme")
    assert listing.returncode == 0, listing.stderr
    assert _key_line(listing.stdout, key_id).split()[1:3] == ["acme", "revoked"]
    with pytest.raises(Unauthenticated, match="revoked"):
        accounts.authenticate(plaintext)
    accounts.engine.dispose()


def test_revoking_an_unknown_key_exits_66(data_dir: Path) -> None:
    missing = ragline(data_dir, "keys", "revoke", "nosuchkey")
    assert missing.returncode == 66, (missing.stdout, missing.stderr)
    assert "nosuchkey" in missing.stderr


def test_an_unknown_role_is_refused_with_the_valid_ones(data_dir: Path) -> None:
    before = ragline(data_dir, "keys", "list").stdout
    bad = ragline(data_dir, "keys", "create", "--account", "acme", "--role", "owner")
    assert bad.returncode != 0
    message = _plain(bad.stderr)
    assert "--role" in message and "'owner'" in message, bad.stderr
    assert all(role in message for role in ("submitter", "reviewer", "indexer", "admin"))
    assert bad.stdout.strip() == ""  # no key printed
    assert ragline(data_dir, "keys", "list").stdout == before


def test_a_key_for_an_unknown_account_exits_66(data_dir: Path) -> None:
    bad = ragline(data_dir, "keys", "create", "--account", "initech", "--role", "submitter")
    assert bad.returncode == 66, (bad.stdout, bad.stderr)
    assert "account 'initech' does not exist" in bad.stderr
    assert bad.stdout.strip() == ""


def test_usage_by_model_prints_rows_and_a_total(data_dir: Path) -> None:
    accounts = _accounts(data_dir)
    acme = accounts.account("acme")
    with Session(accounts.engine) as session:
        for model_id, cost in (("model-a", 1500), ("model-b", 2500), ("model-b", 1000)):
            session.add(
                UsageRecord(
                    account_id=acme.id,
                    feature="handbook",
                    job_id="job-" + model_id,
                    model_id=model_id,
                    input_tokens=100,
                    output_tokens=10,
                    cost_micros=cost,
                )
            )
        session.commit()
    accounts.engine.dispose()

    report = ragline(data_dir, "usage", "--group-by", "model")
    assert report.returncode == 0, report.stderr
    rows = {line.split()[0]: line.split() for line in report.stdout.splitlines()}
    assert rows["model"][:2] == ["model", "calls"]
    assert rows["model-a"][1:] == ["1", "100", "10", "0.001500"]
    assert rows["model-b"][1:] == ["2", "200", "20", "0.003500"]
    assert rows["total"][1:] == ["3", "0.005000"]
    assert report.stdout.splitlines()[-1].startswith("total")

    bad = ragline(data_dir, "usage", "--group-by", "colour")
    assert bad.returncode != 0
    assert "--group-by" in _plain(bad.stderr)
