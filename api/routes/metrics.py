"""Prometheus metrics of this process and of the database's queues."""

from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from ragline.metrics import exposition

if TYPE_CHECKING:
    from api.app import ApiServices


def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get("/metrics")
    def metrics() -> Response:
        """For the scraper on the internal network (no key, like /v1/health)."""
        return Response(exposition(services.core.jobs.engine), media_type=CONTENT_TYPE_LATEST)

    return routes
