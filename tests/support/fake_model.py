"""A real HTTP server on loopback speaking the OpenAI chat-completions protocol, whose
latency and failures each test sets."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    mode: str = "answer"  # answer | extract | error | garbage | huge | hang
    reply: str = "Employees get 25 days of annual leave [1]."
    delay_s: float = 0.0
    status: int = 500
    requests: list[dict[str, Any]] = field(default_factory=list)


class FakeModelServer:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                b = server.behaviour
                b.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                if b.mode == "hang":
                    server._release.wait(30)
                    return
                if b.delay_s:
                    time.sleep(b.delay_s)
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}')
                elif b.mode == "error":
                    self._send(b.status, b'{"error": {"message": "upstream failure"}}')
                elif b.mode == "garbage":
                    self._send(200, b"{not json at all")
                elif b.mode == "huge":
                    self._send(200, b"x" * 2_000_000)
                elif b.mode == "extract":
                    self._send(200, json.dumps(_completion(body, _extract(body))).encode())
                else:
                    self._send(200, json.dumps(_completion(body, b.reply)).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeModelServer:
        self._thread.start()
        return self

    def reset(self) -> None:
        self._release.set()
        self._release = threading.Event()
        self.behaviour = Behaviour()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


# Passage [1] as the shipped template renders it: "[1] title", then the chunk (its heading
# path on the first line, then the text), up to the blank line before the next passage.
PASSAGE_ONE = re.compile(r"^\[1\][^\n]*\n(?P<text>(?:[^\n]+\n?)+)", re.MULTILINE)
CANNOT = "I cannot answer this from the knowledge base."


def _extract(request: dict[str, Any]) -> str:
    """A model that follows the shipped prompt's contract: answer with the first sentence of
    passage [1] and cite it. A template that does not number its passages gets no citation,
    so prompt changes have a measurable effect in evaluations."""
    user = next((m["content"] for m in request.get("messages", []) if m["role"] == "user"), "")
    found = PASSAGE_ONE.search(user)
    if found is None:
        return CANNOT
    lines = found.group("text").strip().splitlines()
    body = " ".join(lines[1:] if len(lines) > 1 else lines)
    sentence = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
    return f"{sentence} [1]"


def _completion(request: dict[str, Any], reply: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": request.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
    }
