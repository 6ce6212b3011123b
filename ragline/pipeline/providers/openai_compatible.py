"""An OpenAI-compatible chat completions endpoint (vLLM, Ollama, OpenAI and others).

The time budget is a hard wall-clock limit: httpx timeouts apply per read, so the body is
streamed under a watchdog that cuts the connection at the deadline; the body size is capped
too.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx

from ragline.config import ModelSpec
from ragline.errors import ModelError, ModelTimeout
from ragline.pipeline.generate import Generation, GenerationRequest, cited_passages


class OpenAICompatibleGenerator:
    def __init__(
        self,
        spec: ModelSpec,
        base_url: str,
        api_key: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.model_id = spec.model_id
        self._spec = spec
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client()

    def generate(self, request: GenerationRequest, timeout_s: float) -> Generation:
        if timeout_s <= 0:
            raise ModelTimeout("no time left for the model call")
        body = {
            "model": self._spec.model_id,
            "messages": request.prompt.messages(),
            "max_tokens": self._spec.max_tokens,
            "temperature": self._spec.temperature,
        }
        raw = self._post(body, timeout_s)
        text, usage = _parse(raw)
        return Generation(
            text=text,
            cited=cited_passages(text, len(request.passages)),
            model_id=self.model_id,
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            usage={k: int(v) for k, v in usage.items() if isinstance(v, int)},
        )

    def _post(self, body: dict[str, Any], timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        limit = self._spec.max_response_bytes
        try:
            with (
                self._client.stream(
                    "POST",
                    self._url,
                    json=body,
                    headers=self._headers,
                    timeout=httpx.Timeout(timeout_s),
                ) as response,
                _Watchdog(response, deadline),
            ):
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ModelError(f"model response is larger than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise ModelTimeout(f"model call exceeded {timeout_s:.3f}s")
                    chunks.append(chunk)
                if response.status_code >= 400:
                    raise ModelError(f"model provider returned HTTP {response.status_code}")
                return b"".join(chunks)
        except httpx.TimeoutException:
            raise ModelTimeout(f"model call exceeded {timeout_s:.3f}s") from None
        except httpx.HTTPError as error:
            if time.monotonic() >= deadline:  # the watchdog cut the connection
                raise ModelTimeout(f"model call exceeded {timeout_s:.3f}s") from None
            raise ModelError(f"model provider unreachable: {type(error).__name__}") from None


class _Watchdog:
    """Shuts the response's socket down at the deadline. httpx's read timeout is per read: a
    server that sent its body a piece at a time, or its headers late and then nothing, held
    the call up to twice its budget, past the job's deadline. shutdown() wakes the read
    blocked in the calling thread (close() would not). The headers come within one read
    timeout of the request."""

    def __init__(self, response: httpx.Response, deadline: float) -> None:
        stream = response.extensions.get("network_stream")
        self._socket: socket.socket | None = stream.get_extra_info("socket") if stream else None
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        if self._socket is not None:
            self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:  # the socket may go back to the pool: never cut it after this
            self._done = True
        self._timer.cancel()

    def _cut(self) -> None:
        with self._lock:
            if self._done or self._socket is None:
                return
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)


def _parse(raw: bytes) -> tuple[str, dict[str, Any]]:
    try:
        data = json.loads(raw)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ModelError("model response is not a chat completion") from None
    if not isinstance(content, str) or not content.strip():
        raise ModelError("model response has no text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return content.strip(), usage
