"""`ragline index … --via-server`: the same operations through the running server's API,
for embedded mode, where the server process owns the Qdrant folder."""

from __future__ import annotations

from typing import Any

import httpx

from ragline.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    RaglineError,
    TransientError,
    Unauthenticated,
)

_ERRORS: dict[int, type[RaglineError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: InvalidInput,
    422: InvalidInput,
    503: TransientError,
}


class IndexServer:
    def __init__(self, base_url: str, key: str | None) -> None:
        if not key:
            raise Unauthenticated(
                "--via-server needs an API key with the indexer role: set RAGLINE_KEY or --key"
            )
        # A build waits for embedding to finish: allow it minutes.
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(3600, connect=5),
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise TransientError(
                f"cannot reach the server at {self._client.base_url}: {type(error).__name__} "
                "(is it running? --server URL, or RAGLINE_HOST and RAGLINE_PORT, say where)"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise _ERRORS.get(response.status_code, RaglineError)(f"server: {detail}")
        return response.json()

    def build(self, folder: str, promote: bool) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "/v1/index/builds", json={"folder": folder, "promote": promote}
        )
        return result

    def promote(self, version: int, force: bool, reason: str) -> dict[str, Any]:
        body = {"version": version, "force": force, "reason": reason}
        result: dict[str, Any] = self._call("POST", "/v1/index/promote", json=body)
        return result

    def rollback(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/index/rollback", json={"reason": reason})
        return result

    def versions(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/index/versions")
        return result

    def diff(self, a: int, b: int) -> dict[str, list[str]]:
        result: dict[str, list[str]] = self._call("GET", "/v1/index/diff", params={"a": a, "b": b})
        return result
