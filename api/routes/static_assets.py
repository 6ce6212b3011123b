"""The review pages' scripts, served by ragline itself: the pages' Content-Security-Policy
allows scripts from this origin only (no inline script, no CDN)."""

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import Response

from ragline.errors import NotFound

if TYPE_CHECKING:
    from api.app import ApiServices

FOLDER = Path(__file__).resolve().parent.parent / "static"
SCRIPTS = {path.name: path.read_bytes() for path in sorted(FOLDER.glob("*.js"))}


def router(_: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/review/static", include_in_schema=False)

    @routes.get("/{name}")
    def script(name: str) -> Response:
        body = SCRIPTS.get(name)
        if body is None:
            raise NotFound("no such file")
        return Response(
            body,
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache"},  # revalidated: a deploy changes them
        )

    return routes
