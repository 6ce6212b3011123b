"""Index operations through the process that owns the store (embedded mode: Qdrant local
allows one owner). `ragline index … --via-server` calls these. The knowledge base is shared
by every account, so these are the platform's: an admin key, or an indexer key of the
platform account (RAGLINE_PLATFORM_ACCOUNT). The folder is read on the server's own
filesystem, inside its source roots only (RAGLINE_SOURCE_ROOTS)."""

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import needs
from api.problems import AUTHENTICATED, WITH_BODY, responses
from api.schemas import Text
from ragline.accounts import Principal
from ragline.db import BIGINT_MAX
from ragline.errors import Forbidden, TransientError
from ragline.knowledge.source_roots import inside_roots, shown_source
from ragline.knowledge.versions import IndexManager
from ragline.models import IndexVersion

if TYPE_CHECKING:
    from api.app import ApiServices


Version = Annotated[int, Query(ge=1, le=BIGINT_MAX)]


class BuildRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder: str = Field(min_length=1, max_length=4096)
    promote: bool = False


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(gt=0, le=BIGINT_MAX)
    force: bool = False
    reason: Text = Field("", max_length=2000)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field("", max_length=2000)


def manifest_view(
    manifest: IndexVersion, roots: tuple[Path, ...], active: bool | None = None
) -> dict[str, Any]:
    view = manifest.model_dump(mode="json")
    view["source"] = shown_source(manifest.source, roots)
    if active is not None:
        view["active"] = active
    return view


def require_force(caller: Principal) -> None:
    """Promoting a version that failed its checks overrides the gate: an admin's call."""
    if not caller.is_admin:
        raise Forbidden("a forced promotion (past failed checks) takes an admin key and a reason")


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/v1/index", tags=["index"], responses=responses(*AUTHENTICATED))
    one_build_at_a_time = threading.Lock()

    settings = services.core.settings
    roots = settings.source_roots
    Authenticated = Annotated[Principal, Depends(needs(services))]

    def platform(caller: Authenticated) -> Principal:
        caller.require_platform(settings.platform_account)
        return caller

    Indexer = Annotated[Principal, Depends(platform)]

    def indexer(_: Indexer) -> IndexManager:
        if services.index is None:
            raise TransientError(
                "this server does not own the knowledge store; run `ragline index …` directly "
                "(with RAGLINE_QDRANT_URL, any process can build)"
            )
        return services.index

    Manager = Annotated[IndexManager, Depends(indexer)]

    @routes.post("/builds", status_code=201, responses=responses(*WITH_BODY))
    def build(body: BuildRequest, manager: Manager, caller: Indexer) -> dict[str, Any]:
        """Build a new version from a folder on the server, inside its source roots (waits
        until it is done)."""
        folder = inside_roots(body.folder, roots)
        with one_build_at_a_time:
            manifest = manager.build(folder, actor=caller.actor)
            if body.promote:
                manifest = manager.promote(manifest.version, actor=caller.actor)
        active = manager.active_version() == manifest.version
        return manifest_view(manifest, roots, active=active)

    @routes.get("/versions")
    def versions(manager: Manager) -> list[dict[str, Any]]:
        return [manifest_view(v.manifest, roots, v.active) for v in manager.list_versions()]

    @routes.post("/promote", responses=responses(*WITH_BODY, 404))
    def promote(body: PromoteRequest, manager: Manager, caller: Indexer) -> dict[str, Any]:
        if body.force:
            require_force(caller)
        manifest = manager.promote(
            body.version, force=body.force, reason=body.reason, actor=caller.actor
        )
        return manifest_view(manifest, roots, active=True)

    @routes.post("/rollback", responses=responses(*WITH_BODY, 404))
    def rollback(body: RollbackRequest, manager: Manager, caller: Indexer) -> dict[str, Any]:
        rolled = manager.rollback(reason=body.reason, actor=caller.actor)
        return manifest_view(rolled, roots, active=True)

    @routes.get("/diff", responses=responses(404))
    def diff(a: Version, b: Version, manager: Manager) -> dict[str, list[str]]:
        changes = manager.diff(a, b)
        return {"added": changes.added, "removed": changes.removed, "changed": changes.changed}

    return routes
