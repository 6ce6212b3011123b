"""The audit trail (ragline/audit.py) on SQLite and PostgreSQL: changes and their entries
commit together, the database refuses to change or delete an entry, the hash chain finds
an entry edited, removed or cut off behind the database's back, concurrent appenders form
one chain, and the list filters and pages."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline import audit
from ragline.accounts import Accounts
from ragline.audit import GENESIS, Actor, AuditQuery
from ragline.budget import BudgetBook
from ragline.config import Budgets
from ragline.errors import Conflict, InvalidInput
from ragline.models import AuditEntry, AuditHead, utcnow

ALICE = Actor.operator()
KEY = Actor.of_key("k1", "acct-1")


def _entries(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))


def test_each_change_writes_who_what_and_when_and_the_chain_verifies(engine: Engine) -> None:
    accounts = Accounts(engine)
    account = accounts.create_account("acme", actor=ALICE)
    issued = accounts.create_key("acme", roles=["submitter"], name="bot", actor=KEY)
    accounts.rotate_webhook_secret("acme", overlap=timedelta(hours=2), actor=KEY)
    accounts.revoke_key(issued.key.id, actor=KEY)
    accounts.revoke_key(issued.key.id, actor=KEY)  # already revoked: no change, no entry
    BudgetBook(engine, Budgets()).set_limit(
        "account", "acme", "daily", 5.0, by="k1", actor=KEY, account_id=account.id
    )

    entries = _entries(engine)
    assert [(e.seq, e.action, e.actor) for e in entries] == [
        (1, "account.create", ALICE.label),
        (2, "key.create", "key:k1"),
        (3, "account.webhook_secret.rotate", "key:k1"),
        (4, "key.revoke", "key:k1"),
        (5, "budget.set", "key:k1"),
    ]
    assert all(e.account_id == account.id for e in entries)
    assert entries[1].after == {
        "name": "bot",
        "roles": ["submitter"],
        "groups": ["everyone"],
        "expires_at": None,
    }
    assert entries[2].after == {"overlap_seconds": 7200}
    assert entries[4].before == {"limit": None} and entries[4].after == {"limit": 5.0}
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    # No secret reaches the trail: not the key's, not the webhook's.
    stored = " ".join(f"{e.before} {e.after} {e.target}" for e in entries)
    assert issued.plaintext.split("_")[-1] not in stored and "whsec_" not in stored

    report = audit.verify(engine)
    assert report.intact and report.entries == 5 and report.head_seq == 5
    assert report.head_hash == entries[-1].hash


def test_a_change_that_fails_leaves_no_entry(engine: Engine) -> None:
    accounts = Accounts(engine)
    accounts.create_account("acme", actor=ALICE)
    with pytest.raises(Conflict):
        accounts.create_account("acme", actor=ALICE)
    with pytest.raises(InvalidInput):
        accounts.create_key("acme", roles=["wizard"], actor=ALICE)
    assert [e.action for e in _entries(engine)] == ["account.create"]
    assert audit.verify(engine).intact


def test_the_database_refuses_to_change_or_delete_an_entry(engine: Engine) -> None:
    Accounts(engine).create_account("acme", actor=ALICE)
    for statement in (
        "UPDATE audit_entries SET actor = 'operator:mallory'",
        "DELETE FROM audit_entries",
    ):
        # The trigger's own message, whichever error class the driver wraps it in.
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    assert _entries(engine)[0].actor == ALICE.label


def _behind_the_back(engine: Engine, statement: str) -> None:
    """What someone with the database's owner rights (or a hand-edited backup) can do."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            connection.execute(text(statement))
            connection.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_entries_no_update"))
            connection.execute(text("DROP TRIGGER audit_entries_no_delete"))
            connection.execute(text(statement))


@pytest.mark.parametrize(
    ("statement", "broken_at", "problem"),
    [
        ("UPDATE audit_entries SET actor = 'operator:mallory' WHERE seq = 3", 3, "was changed"),
        ("UPDATE audit_entries SET after = NULL WHERE seq = 2", 2, "was changed"),
        ("DELETE FROM audit_entries WHERE seq = 2", 3, "entries 2 to 2 are missing"),
        ("DELETE FROM audit_entries WHERE seq >= 4", 4, "entries were removed from the end"),
    ],
)
def test_an_entry_changed_or_removed_behind_the_database_breaks_the_chain(
    engine: Engine, statement: str, broken_at: int, problem: str
) -> None:
    accounts = Accounts(engine)
    accounts.create_account("acme", actor=ALICE)
    for n in range(4):
        accounts.create_key("acme", roles=["reviewer"], name=f"key {n}", actor=ALICE)
    assert audit.verify(engine).intact

    _behind_the_back(engine, statement)

    report = audit.verify(engine)
    assert not report.intact
    assert report.broken_at == broken_at
    assert problem in (report.problem or "")


def test_a_forged_entry_with_its_own_hash_does_not_follow_the_chain(engine: Engine) -> None:
    accounts = Accounts(engine)
    accounts.create_account("acme", actor=ALICE)
    accounts.create_account("globex", actor=ALICE)
    entries = _entries(engine)
    forged = AuditEntry(**{**entries[1].model_dump(), "actor": "operator:mallory"})
    forged.prev_hash = "f" * 64
    forged.hash = audit.digest(forged)  # a correct hash of the wrong previous one
    _behind_the_back(
        engine,
        f"UPDATE audit_entries SET actor = 'operator:mallory', prev_hash = '{forged.prev_hash}', "
        f"hash = '{forged.hash}' WHERE seq = 2",
    )
    report = audit.verify(engine)
    assert report.broken_at == 2 and "does not follow" in (report.problem or "")


def test_concurrent_appenders_form_one_chain(engine: Engine) -> None:
    accounts = Accounts(engine)
    accounts.create_account("acme", actor=ALICE)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def issue(n: int) -> None:
        start.wait()
        try:
            for i in range(5):
                accounts.create_key("acme", roles=["submitter"], name=f"{n}-{i}", actor=KEY)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=issue, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    entries = _entries(engine)
    assert [e.seq for e in entries] == list(range(1, 42))
    report = audit.verify(engine)
    assert report.intact and report.entries == 41


def test_the_list_filters_and_pages_newest_first(engine: Engine) -> None:
    accounts = Accounts(engine)
    acme = accounts.create_account("acme", actor=ALICE)
    globex = accounts.create_account("globex", actor=ALICE)
    for n in range(5):
        accounts.create_key("acme", roles=["submitter"], name=f"a{n}", actor=KEY)
    accounts.create_key("globex", roles=["submitter"], actor=ALICE)

    page, cursor = audit.entries(engine, AuditQuery(action="key.", account_id=acme.id, limit=2))
    seen = [e.seq for e in page]
    while cursor:
        page, cursor = audit.entries(
            engine, AuditQuery(action="key.", account_id=acme.id, limit=2, cursor=cursor)
        )
        seen += [e.seq for e in page]
    assert seen == [7, 6, 5, 4, 3]
    only_globex = audit.entries(engine, AuditQuery(account_id=globex.id))[0]
    assert [e.action for e in only_globex] == ["key.create", "account.create"]
    by_alice = audit.entries(engine, AuditQuery(actor=ALICE.label))[0]
    assert [e.seq for e in by_alice] == [8, 2, 1]
    assert audit.entries(engine, AuditQuery(action="key"))[0] == []  # exact unless 'key.'
    later = utcnow() + timedelta(minutes=1)
    assert audit.entries(engine, AuditQuery(since=later))[0] == []
    with pytest.raises(InvalidInput, match="cursor"):
        audit.entries(engine, AuditQuery(cursor="not-a-cursor"))
    with pytest.raises(InvalidInput, match="since"):
        audit.entries(engine, AuditQuery(since=later, until=later - timedelta(days=1)))


def test_an_empty_trail_verifies_and_its_head_is_created_on_first_use(engine: Engine) -> None:
    report = audit.verify(engine)
    assert report.intact and report.entries == 0 and report.head_hash == GENESIS
    with Session(engine) as session:
        assert session.get(AuditHead, 1) is None
    Accounts(engine).create_account("acme", actor=ALICE)
    assert audit.verify(engine).head_seq == 1
