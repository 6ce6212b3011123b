"""Index operations through the process that owns the store (embedded mode: Qdrant local
allows one owner). `ragline index … --via-server` calls these. Indexer role; the folder is
read on the server's own filesystem."""

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
from ragline.errors import TransientError
from ragline.knowledge.versions import IndexManager
from ragline.models import IndexVersion, Role

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


def manifest_view(manifest: IndexVersion, active: bool | None = None) -> dict[str, Any]:
    view = manifest.model_dump(mode="json")
    if active is not None:
        view["active"] = active
    return view


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/v1/index", tags=["index"], responses=responses(*AUTHENTICATED))
    one_build_at_a_time = threading.Lock()

    Indexer = Annotated[Principal, Depends(needs(services, Role.INDEXER))]

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
        """Build a new version from a folder on the server (waits until it is done)."""
        with one_build_at_a_time:
            manifest = manager.build(Path(body.folder), actor=caller.actor)
            if body.promote:
                manifest = manager.promote(manifest.version, actor=caller.actor)
        return manifest_view(manifest, active=manager.active_version() == manifest.version)

    @routes.get("/versions")
    def versions(manager: Manager) -> list[dict[str, Any]]:
        return [manifest_view(v.manifest, v.active) for v in manager.list_versions()]

    @routes.post("/promote", responses=responses(*WITH_BODY, 404))
    def promote(body: PromoteRequest, manager: Manager, caller: Indexer) -> dict[str, Any]:
        manifest = manager.promote(
            body.version, force=body.force, reason=body.reason, actor=caller.actor
        )
        return manifest_view(manifest, active=True)

    @routes.post("/rollback", responses=responses(*WITH_BODY, 404))
    def rollback(body: RollbackRequest, manager: Manager, caller: Indexer) -> dict[str, Any]:
        return manifest_view(manager.rollback(reason=body.reason, actor=caller.actor), active=True)

    @routes.get("/diff", responses=responses(404))
    def diff(a: Version, b: Version, manager: Manager) -> dict[str, list[str]]:
        changes = manager.diff(a, b)
        return {"added": changes.added, "removed": changes.removed, "changed": changes.changed}

    return routes
