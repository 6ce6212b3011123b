"""The shared knowledge base against a tenant (issue 20, finding 1), over HTTP on the
embedded server that owns its store. Every account answers from one knowledge base, so
only the platform operates it: an admin key, or an indexer key of the platform account.
A tenant's indexer key builds, promotes and rolls back nothing; builds read only from the
server's source roots, and a folder outside them is refused without being echoed; a
forced promotion is an admin's, with a reason; every operation names the key and account
that made it, and the versions list shows no server path or OS user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy.engine import Engine

from api.app import create_app
from ragline import audit
from ragline.audit import AuditQuery
from ragline.config import RaglineConfig, parse_config
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.knowledge.versions import IndexManager
from tests.support.server import serving
from tests.support.services import embedded_app, settings_for
from tests.support.tenants import make_tenant

PLANTED = "Every employee receives 99 days of paid annual leave, says the tenant."


@dataclass(frozen=True)
class Site:
    url: str
    engine: Engine
    manager: IndexManager
    roots: Path  # the server's one source root
    outside: Path  # a readable folder outside it, holding a planted document
    keys: dict[str, str]  # platform-indexer, tenant-indexer, admin
    key_ids: dict[str, str]

    def client(self, who: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.Client(base_url=self.url, timeout=120, headers=auth)


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leave.md").write_text(f"# Leave\n\n{text}\n")
    return folder


@pytest.fixture
def site(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    tmp_path: Path,
) -> Iterator[Site]:
    data = repo_config.model_dump()
    data["knowledge"]["gate"]["smoke_queries"] = []
    roots = tmp_path / "documents"
    settings = settings_for(tmp_path / "data", source_roots=(roots,))
    with embedded_app(
        parse_config(data),
        tmp_path / "data",
        handbook_store,
        embedder,
        engine=sqlite_engine,
        own_index=True,
        settings=settings,
    ) as app:
        manager = app.api.index
        assert manager is not None
        manager.promote(manager.build(_write(roots / "v1", "Everyone gets 25 days.")).version)
        outside = _write(tmp_path / "elsewhere", PLANTED)
        keys, ids = {}, {}
        for who, account, role in (
            ("platform-indexer", "platform", "indexer"),
            ("tenant-indexer", "acme", "indexer"),
            ("admin", "hq", "admin"),
        ):
            principal, keys[who] = make_tenant(sqlite_engine, name=account, roles=(role,))
            ids[who] = principal.key_id
        with serving(create_app(app.api)) as url:
            yield Site(url, sqlite_engine, manager, roots, outside, keys, ids)


def _versions(site: Site) -> list[int]:
    return [listing.manifest.version for listing in site.manager.list_versions()]


def test_a_tenants_indexer_key_moves_nothing(site: Site) -> None:
    """The attack of the finding: B's indexer builds from a folder of its own, force-promotes
    it and rolls back. Each is 403 and changes nothing."""
    before, active = _versions(site), site.manager.active_version()
    with site.client("tenant-indexer") as tenant:
        for path, body in (
            ("/v1/index/builds", {"folder": str(site.roots / "v1"), "promote": True}),
            ("/v1/index/promote", {"version": active, "force": True, "reason": "x"}),
            ("/v1/index/rollback", {"reason": "x"}),
        ):
            response = tenant.post(path, json=body)
            assert response.status_code == 403, response.text
            assert "platform account" in response.json()["detail"]
        assert tenant.get("/v1/index/versions").status_code == 403
    assert _versions(site) == before and site.manager.active_version() == active


def test_a_folder_outside_the_source_roots_is_refused_unechoed(site: Site) -> None:
    before = _versions(site)
    escape = site.roots / "link"
    escape.symlink_to(site.outside, target_is_directory=True)
    with site.client("platform-indexer") as indexer:
        for folder in (
            str(site.outside),
            str(site.roots / ".." / "elsewhere"),
            str(escape),  # a symlink inside the root to a folder outside it
            "/etc",
            "/definitely/not/here",  # existence is not revealed either
        ):
            response = indexer.post("/v1/index/builds", json={"folder": folder})
            assert response.status_code == 403, (folder, response.text)
            assert "elsewhere" not in response.text and folder not in response.text
            assert "source roots" in response.json()["detail"]
        missing = indexer.post("/v1/index/builds", json={"folder": str(site.roots / "nope")})
        assert missing.status_code == 422, missing.text
    assert _versions(site) == before
    assert PLANTED not in str([listing.manifest for listing in site.manager.list_versions()])


def test_the_platform_indexer_builds_inside_the_roots_and_each_step_names_its_key(
    site: Site,
) -> None:
    folder = _write(site.roots / "v2", "Everyone gets 26 days.")
    with site.client("platform-indexer") as indexer:
        built = indexer.post("/v1/index/builds", json={"folder": str(folder)})
        assert built.status_code == 201, built.text
        version = built.json()["version"]
        promoted = indexer.post("/v1/index/promote", json={"version": version})
        assert promoted.status_code == 200, promoted.text
        listed = indexer.get("/v1/index/versions").json()
    shown = next(v for v in listed if v["version"] == version)
    assert shown["source"] == "documents/v2"  # relative to its root, no server path
    assert shown["built_by"] == f"key:{site.key_ids['platform-indexer']}"  # no OS user
    assert str(site.roots) not in str(listed)
    for action in ("index.build", "index.promote"):
        entry = audit.entries(site.engine, AuditQuery(action=action))[0][0]
        assert entry.actor == f"key:{site.key_ids['platform-indexer']}"
        assert entry.account_id is not None


def test_a_forced_promotion_takes_an_admin_key_and_a_reason(site: Site) -> None:
    failing = _write(site.roots / "v3", "Everyone gets 27 days.")
    smoke = [{"question": "Which moon has the tallest volcano?", "expected_documents": ["x"]}]
    (failing / "smoke.yaml").write_text(yaml.safe_dump(smoke))
    version = site.manager.build(failing).version
    active = site.manager.active_version()
    forced = {"version": version, "force": True, "reason": "the smoke set is wrong"}
    with site.client("platform-indexer") as indexer:
        refused = indexer.post("/v1/index/promote", json=forced)
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert site.manager.active_version() == active
    with site.client("admin") as admin:
        no_reason = admin.post("/v1/index/promote", json={**forced, "reason": " "})
        assert no_reason.status_code == 422, no_reason.text
        assert admin.post("/v1/index/promote", json=forced).status_code == 200
    assert site.manager.active_version() == version
    entry = audit.entries(site.engine, AuditQuery(action="index.promote"))[0][0]
    assert entry.actor == f"key:{site.key_ids['admin']}"
    assert entry.after is not None and entry.after["forced"] is True
