"""Accounts and keys for tests, made the way an operator makes them."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ragline.accounts import Accounts, Principal
from ragline.errors import NotFound


def make_tenant(
    engine: Engine,
    name: str = "acme",
    roles: tuple[str, ...] = ("submitter", "reviewer"),
    groups: tuple[str, ...] = ("everyone",),
) -> tuple[Principal, str]:
    """An account (created if missing) and a new key for it: (principal, plaintext key)."""
    accounts = Accounts(engine)
    try:
        accounts.account(name)
    except NotFound:
        accounts.create_account(name)
    issued = accounts.create_key(name, roles=roles, groups=groups, name=f"{name} test key")
    return accounts.authenticate(issued.plaintext), issued.plaintext
