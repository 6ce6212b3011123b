"""Liveness of the database, broker and store, and whether admission is open."""

from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.schemas import Health

if TYPE_CHECKING:
    from api.app import ApiServices


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(tags=["health"])

    @routes.get("/v1/health", response_model=Health, responses={503: {"model": Health}})
    def health() -> JSONResponse:
        components: dict[str, dict[str, str]] = {}
        for name, check in services.health_checks.items():
            try:
                components[name] = {"status": "ok", "detail": check()}
            except Exception as error:
                components[name] = {"status": "down", "detail": _describe(error)}
        healthy = all(c["status"] == "ok" for c in components.values())
        queue: dict[str, int | str] = {"max_depth": services.admission.config.jobs.max_queue_depth}
        try:
            depth = services.admission.queue_depth()
            queue["depth"] = depth
            queue["admission"] = "open" if depth < int(queue["max_depth"]) else "closed"
        except Exception:
            queue["admission"] = "unknown"
        body = Health(
            status="ok" if healthy else "down",
            mode=services.mode,
            components=components,
            queue=queue,
        )
        return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)

    return routes


def _describe(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:200]
