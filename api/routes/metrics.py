"""Prometheus metrics of this process and of the database's queues."""

import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from ragline.errors import Unauthenticated
from ragline.metrics import exposition

if TYPE_CHECKING:
    from api.app import ApiServices


def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    secret = services.core.settings.metrics_token
    token = secret.get_secret_value() if secret is not None else ""  # empty: unset

    @routes.get("/metrics")
    def metrics(
        authorization: Annotated[str | None, Header(max_length=512)] = None,
    ) -> Response:
        """For the scraper: open like /v1/health unless RAGLINE_METRICS_TOKEN is set."""
        if token:
            expected = f"Bearer {token}"
            if not hmac.compare_digest((authorization or "").encode(), expected.encode()):
                raise Unauthenticated("GET /metrics needs 'Authorization: Bearer <metrics token>'")
        return Response(exposition(services.core.jobs.engine), media_type=CONTENT_TYPE_LATEST)

    return routes
