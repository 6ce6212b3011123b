"""Accounts and API keys on SQLite and PostgreSQL: the key format, what is stored (a hash
only), authentication and its refusals, revocation, expiry, name checks and the demo key."""

from __future__ import annotations

import hashlib
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ragline.accounts import Accounts, IssuedKey, ensure_demo_key
from ragline.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from ragline.models import ApiKey, Role, utcnow
from tests.support.waiting import wait_for

KEY_FORMAT = re.compile(r"^rl_([0-9a-f]+)_([A-Za-z0-9_-]+)$")
INVALID = "invalid API key"


@pytest.fixture
def accounts(engine: Engine) -> Accounts:
    accounts = Accounts(engine)
    accounts.create_account("acme")
    accounts.create_account("globex")
    return accounts


def _issue(accounts: Accounts, account: str = "acme", **kwargs: object) -> IssuedKey:
    kwargs.setdefault("roles", ["submitter", "reviewer"])
    kwargs.setdefault("groups", ["sales", "everyone"])
    return accounts.create_key(account, **kwargs)  # type: ignore[arg-type]


def _secret(issued: IssuedKey) -> str:
    match = KEY_FORMAT.match(issued.plaintext)
    assert match, issued.plaintext
    return match.group(2)


def _refusal(accounts: Accounts, presented: str | None) -> str:
    with pytest.raises(Unauthenticated) as refused:
        accounts.authenticate(presented)
    return str(refused.value)


# -- issuing and storing ------------------------------------------------------------------------


def test_a_key_reads_rl_id_secret_and_the_id_is_the_rows_id(accounts: Accounts) -> None:
    issued = _issue(accounts)
    match = KEY_FORMAT.match(issued.plaintext)
    assert match, issued.plaintext
    key_id, secret = match.groups()
    assert key_id == issued.key.id
    assert len(secret) >= 43  # 32 random bytes, url-safe base64
    other = _issue(accounts)
    assert other.key.id != issued.key.id and _secret(other) != secret


def test_only_a_sha256_of_the_secret_is_stored(accounts: Accounts, engine: Engine) -> None:
    issued = _issue(accounts, name="billing system")
    secret = _secret(issued)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).mappings().all()
    assert len(rows) == 1
    row = dict(rows[0])
    assert row["id"] == issued.key.id
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    stored = repr(row)
    assert secret not in stored
    assert issued.plaintext not in stored
    # Nor any sizeable piece of the secret (e.g. a truncated copy).
    assert secret[:16] not in stored and secret[-16:] not in stored
    # The returned model object carries the hash too, never the secret.
    assert secret not in repr(issued.key.model_dump())


def test_authenticate_returns_the_principal_with_roles_and_groups(accounts: Accounts) -> None:
    issued = _issue(accounts, roles=["reviewer", "submitter", "reviewer"], groups=["sales"])
    principal = accounts.authenticate(issued.plaintext)
    acme = accounts.account("acme")
    assert principal.account_id == acme.id
    assert principal.account_name == "acme"
    assert principal.key_id == issued.key.id
    assert principal.roles == frozenset({"submitter", "reviewer"})
    assert principal.groups == ("sales",)
    assert not principal.is_admin
    assert principal.visible_account == acme.id


def test_an_admin_key_sees_every_account(accounts: Accounts) -> None:
    principal = accounts.authenticate(_issue(accounts, roles=["admin"]).plaintext)
    assert principal.is_admin and principal.visible_account is None


def test_keys_lists_by_account(accounts: Accounts) -> None:
    a = _issue(accounts, "acme")
    g = _issue(accounts, "globex")
    listed = accounts.keys()
    everything = {(key.id, owner.name) for key, owner in listed}
    assert everything == {(a.key.id, "acme"), (g.key.id, "globex")}
    only_globex = accounts.keys(accounts.account("globex").id)
    assert [(key.id, owner.name) for key, owner in only_globex] == [(g.key.id, "globex")]


# -- refusals -----------------------------------------------------------------------------------


def test_unknown_id_and_wrong_secret_are_refused_alike(accounts: Accounts) -> None:
    issued = _issue(accounts)
    secret = _secret(issued)
    unknown_id = "0" * len(issued.key.id)
    assert unknown_id != issued.key.id
    wrong_secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    unknown = _refusal(accounts, f"rl_{unknown_id}_{secret}")
    wrong = _refusal(accounts, f"rl_{issued.key.id}_{wrong_secret}")
    # The same message for both: nothing tells a prober whether the id exists.
    assert unknown == wrong == INVALID
    # The genuine key still works.
    assert accounts.authenticate(issued.plaintext).key_id == issued.key.id


@pytest.mark.parametrize(
    "presented",
    [
        "rl_",
        "rl_abc",
        "rl__secret",
        "rl_abc_",
        "RL_abc_secret",
        "xx_abc_secret",
        "abc_secret",
        "Bearer rl_abc_secret",
        " ",
        "rl_" + "a" * 500,
    ],
)
def test_malformed_keys_are_invalid(accounts: Accounts, presented: str) -> None:
    assert _refusal(accounts, presented) == INVALID


def test_a_real_key_altered_is_invalid(accounts: Accounts) -> None:
    issued = _issue(accounts)
    for altered in (
        issued.plaintext + "x",
        issued.plaintext[:-1],
        issued.plaintext.removeprefix("rl_"),
        issued.plaintext.upper(),
        " " + issued.plaintext,
    ):
        assert _refusal(accounts, altered) == INVALID, altered


@pytest.mark.parametrize("presented", [None, ""])
def test_no_key_is_refused_and_says_a_key_is_required(
    accounts: Accounts, presented: str | None
) -> None:
    message = _refusal(accounts, presented)
    assert "required" in message and "Bearer" in message


def test_a_revoked_key_is_refused_as_revoked(accounts: Accounts) -> None:
    issued = _issue(accounts)
    keep = _issue(accounts)
    revoked = accounts.revoke_key(issued.key.id)
    assert revoked.revoked_at is not None
    assert "revoked" in _refusal(accounts, issued.plaintext)
    assert accounts.authenticate(keep.plaintext).key_id == keep.key.id
    # Revoking again changes nothing.
    assert accounts.revoke_key(issued.key.id).revoked_at == revoked.revoked_at


def test_an_expired_key_is_refused_as_expired(accounts: Accounts, engine: Engine) -> None:
    issued = _issue(accounts, expires_at=utcnow() + timedelta(days=1))
    assert accounts.authenticate(issued.plaintext).key_id == issued.key.id
    with Session(engine) as session:
        key = session.get(ApiKey, issued.key.id)
        assert key is not None
        key.expires_at = utcnow() - timedelta(seconds=1)
        session.add(key)
        session.commit()
    message = _refusal(accounts, issued.plaintext)
    assert "expired" in message


def test_a_key_cannot_be_created_already_expired(accounts: Accounts) -> None:
    with pytest.raises(InvalidInput) as refused:
        _issue(accounts, expires_at=utcnow() - timedelta(seconds=1))
    assert refused.value.field == "expires_at"
    assert accounts.keys() == []


# -- names and roles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Bad Name", "ACME", "", "-acme", "_acme", "acme!", "a/b", "é", "a" * 65]
)
def test_invalid_account_names_are_refused(engine: Engine, name: str) -> None:
    accounts = Accounts(engine)
    with pytest.raises(InvalidInput) as refused:
        accounts.create_account(name)
    assert refused.value.field == "name"
    assert accounts.accounts() == []


def test_valid_account_names_are_accepted(engine: Engine) -> None:
    accounts = Accounts(engine)
    for name in ("a", "acme-2", "acme_eu", "0day", "a" * 64):
        accounts.create_account(name)
    assert len(accounts.accounts()) == 5


def test_a_duplicate_account_is_a_conflict(accounts: Accounts) -> None:
    with pytest.raises(Conflict) as refused:
        accounts.create_account("acme")
    assert "already exists" in str(refused.value)
    assert [a.name for a in accounts.accounts()] == ["acme", "globex"]


@pytest.mark.parametrize(
    "roles", [["owner"], ["submitter", "superuser"], ["Admin"], [], ["admin "]]
)
def test_unknown_or_missing_roles_are_refused(accounts: Accounts, roles: list[str]) -> None:
    with pytest.raises(InvalidInput) as refused:
        _issue(accounts, roles=roles)
    assert refused.value.field == "roles"
    assert accounts.keys() == []


def test_every_role_can_be_granted(accounts: Accounts) -> None:
    issued = _issue(accounts, roles=[r.value for r in Role])
    assert accounts.authenticate(issued.plaintext).roles == {r.value for r in Role}


@pytest.mark.parametrize("group", ["bad group", "", "-sales", ".x", "sales/eu", "g" * 65])
def test_invalid_group_names_are_refused(accounts: Accounts, group: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _issue(accounts, groups=["sales", group])
    assert refused.value.field == "groups"
    assert accounts.keys() == []


def test_a_key_for_an_unknown_account_is_not_found(accounts: Accounts) -> None:
    with pytest.raises(NotFound):
        _issue(accounts, "initech")


# -- revocation across accounts -----------------------------------------------------------------


def test_an_account_cannot_revoke_another_accounts_key(accounts: Accounts) -> None:
    acme_key = _issue(accounts, "acme")
    globex = accounts.account("globex")
    with pytest.raises(NotFound) as refused:
        accounts.revoke_key(acme_key.key.id, account_id=globex.id)
    # The same answer as for a key that does not exist at all.
    with pytest.raises(NotFound) as missing:
        accounts.revoke_key("ffffffffffff", account_id=globex.id)
    assert str(refused.value).replace(acme_key.key.id, "ID") == str(missing.value).replace(
        "ffffffffffff", "ID"
    )
    assert accounts.authenticate(acme_key.plaintext).key_id == acme_key.key.id
    # Its own account may.
    accounts.revoke_key(acme_key.key.id, account_id=accounts.account("acme").id)
    assert "revoked" in _refusal(accounts, acme_key.plaintext)


def test_revoking_an_unknown_key_is_not_found(accounts: Accounts) -> None:
    with pytest.raises(NotFound):
        accounts.revoke_key("nosuchkey")


# -- the key cache (Settings.key_cache_ms) --------------------------------------------------------


def _checked(engine: Engine, cache_s: float, **kwargs: object) -> tuple[Accounts, IssuedKey]:
    """An API process's Accounts (a key cache) that has just authenticated a new key."""
    cached = Accounts(engine, key_cache_s=cache_s)
    cached.create_account("acme")
    issued = _issue(cached, **kwargs)
    assert cached.recent(issued.plaintext) is None  # never checked here yet
    cached.authenticate(issued.plaintext)
    return cached, issued


def test_a_key_checked_a_moment_ago_is_reused_without_a_read(engine: Engine) -> None:
    cached, issued = _checked(engine, 60)
    first = cached.authenticate(issued.plaintext)
    assert cached.recent(issued.plaintext) == first
    # Another process revokes it: this one still knows the key as it read it (the window
    # the setting documents), so reuse is real, not a read on every request.
    Accounts(engine).revoke_key(issued.key.id)
    assert cached.authenticate(issued.plaintext) == first
    # Without a cache the revocation is seen at once.
    assert "revoked" in _refusal(Accounts(engine), issued.plaintext)


def test_a_revocation_in_the_same_process_ends_the_key_at_once(engine: Engine) -> None:
    cached, issued = _checked(engine, 60)
    cached.revoke_key(issued.key.id)
    assert cached.recent(issued.plaintext) is None
    assert "revoked" in _refusal(cached, issued.plaintext)


def test_a_cached_key_lapses_and_is_read_again(engine: Engine) -> None:
    cached, issued = _checked(engine, 0.05)
    Accounts(engine).revoke_key(issued.key.id)
    # Bounded poll: the entry lapses after 50 ms, then the read sees the revocation.
    wait_for(lambda: cached.recent(issued.plaintext) is None, timeout_s=10, every_s=0.01)
    assert "revoked" in _refusal(cached, issued.plaintext)


def test_a_wrong_secret_is_never_answered_from_the_cache(engine: Engine) -> None:
    cached, issued = _checked(engine, 60)
    forged = issued.plaintext[:-4] + ("AAAA" if not issued.plaintext.endswith("AAAA") else "BBBB")
    assert cached.recent(forged) is None
    assert _refusal(cached, forged) == INVALID


def test_an_expiry_is_checked_against_now_on_a_cached_key(engine: Engine) -> None:
    cached, issued = _checked(engine, 60, expires_at=utcnow() + timedelta(seconds=2))
    wait_for(lambda: _expired(cached, issued.plaintext), timeout_s=10, every_s=0.02)


def _expired(accounts: Accounts, presented: str) -> bool:
    try:
        accounts.recent(presented)
    except Unauthenticated as refused:
        return "expired" in str(refused)
    return False


# -- the demo key -------------------------------------------------------------------------------


def test_the_demo_key_is_kept_across_calls(engine: Engine, tmp_path: Path) -> None:
    accounts = Accounts(engine)
    path = tmp_path / "data" / "demo-key"
    first = ensure_demo_key(accounts, path)
    assert first.startswith("rl_")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first
    assert ensure_demo_key(accounts, path) == first
    assert ensure_demo_key(Accounts(engine), path) == first
    assert len(accounts.keys()) == 1

    principal = accounts.authenticate(first)
    assert principal.account_name == "demo"
    assert principal.roles == {r.value for r in Role}


def test_a_revoked_or_lost_demo_key_is_replaced(engine: Engine, tmp_path: Path) -> None:
    accounts = Accounts(engine)
    path = tmp_path / "demo-key"
    first = ensure_demo_key(accounts, path)
    accounts.revoke_key(accounts.authenticate(first).key_id)

    second = ensure_demo_key(accounts, path)
    assert second != first
    assert path.read_text().strip() == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert accounts.authenticate(second).account_name == "demo"
    assert [a.name for a in accounts.accounts()] == ["demo"]  # the account is reused

    path.unlink()
    third = ensure_demo_key(accounts, path)
    assert third not in (first, second)
    assert accounts.authenticate(third).account_name == "demo"

    path.write_text("not a key\n")
    fourth = ensure_demo_key(accounts, path)
    assert fourth not in (first, second, third)
    assert path.read_text().strip() == fourth


def _last_used(engine: Engine, key_id: str) -> object:
    with Session(engine) as session:
        key = session.get(ApiKey, key_id)
        assert key is not None
        return key.last_used_at


def test_a_key_records_when_it_was_last_used_at_most_once_a_minute(
    accounts: Accounts, engine: Engine
) -> None:
    issued = _issue(accounts)
    assert _last_used(engine, issued.key.id) is None
    accounts.authenticate(issued.plaintext)
    first = _last_used(engine, issued.key.id)
    assert first is not None and utcnow() - first < timedelta(seconds=10)  # type: ignore[operator]
    accounts.authenticate(issued.plaintext)
    assert _last_used(engine, issued.key.id) == first  # within the minute: not written again
    with Session(engine) as session:  # a minute later
        key = session.get(ApiKey, issued.key.id)
        assert key is not None
        key.last_used_at = utcnow() - timedelta(minutes=2)
        session.add(key)
        session.commit()
    accounts.authenticate(issued.plaintext)
    later = _last_used(engine, issued.key.id)
    assert later is not None and utcnow() - later < timedelta(seconds=10)  # type: ignore[operator]
    with pytest.raises(Unauthenticated):
        accounts.authenticate(issued.plaintext[:-2] + "xx")  # a wrong secret marks nothing
    assert _last_used(engine, issued.key.id) == later
