"""A real HTTP server on loopback speaking the OpenAI chat-completions protocol, whose
latency and failures each test sets: for every request (`mode`), or for the requests whose
prompt contains a given text (`faults`), so a batch can mix faults with healthy answers."""

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
    mode: str = "answer"  # answer | extract | script | error | garbage | huge | slow | hang
    # Text in a request's user message -> the mode for that request (the first key found).
    faults: dict[str, str] = field(default_factory=dict)
    reply: str = "Employees get 25 days of annual leave [1]."
    delay_s: float = 0.0
    status: int = 500
    # slow: the headers at once, then the extractive answer in SLOW_PIECES pieces, one
    # every drip_s: each read is quick, the whole response is not.
    drip_s: float = 1.5
    # script: question -> the reply, citing passages by title ({Annual Leave}, or
    # {wrong:Annual Leave} for a passage with another title); see scripted_reply().
    script: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def mode_for(self, request: dict[str, Any]) -> str:
        user = _user_message(request)
        return next((mode for text, mode in self.faults.items() if text in user), self.mode)


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
                mode = b.mode_for(body)
                b.requests.append(
                    {"path": self.path, "body": body, "headers": dict(self.headers), "mode": mode}
                )
                if mode == "hang":
                    server._release.wait(30)
                    return
                if b.delay_s:
                    time.sleep(b.delay_s)
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}')
                elif mode == "error":
                    self._send(b.status, b'{"error": {"message": "upstream failure"}}')
                elif mode == "garbage":
                    self._send(200, b"{not json at all")
                elif mode == "huge":
                    self._send(200, b"x" * HUGE_BYTES)
                elif mode == "slow":
                    payload = json.dumps(_completion(body, _extract(body))).encode()
                    self._send(200, payload, pieces=SLOW_PIECES, every_s=b.drip_s)
                elif mode == "extract":
                    self._send(200, json.dumps(_completion(body, _extract(body))).encode())
                elif mode == "script":
                    reply = scripted_reply(_user_message(body), b.script)
                    self._send(200, json.dumps(_completion(body, reply)).encode())
                else:
                    self._send(200, json.dumps(_completion(body, b.reply)).encode())

            def _send(
                self, status: int, payload: bytes, pieces: int = 1, every_s: float = 0.0
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                size = max(1, -(-len(payload) // pieces))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    for start in range(0, len(payload), size):
                        if start:
                            time.sleep(every_s)
                        self.wfile.write(payload[start : start + size])

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

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
HUGE_BYTES = 2_000_000  # twice the models table's default max_response_bytes
SLOW_PIECES = 4


def _user_message(request: dict[str, Any]) -> str:
    messages = request.get("messages", [])
    return next((m["content"] for m in messages if m.get("role") == "user"), "")


def _extract(request: dict[str, Any]) -> str:
    """A model that follows the shipped prompt's contract: answer with the first sentence of
    passage [1] and cite it. A template that does not number its passages gets no citation,
    so prompt changes have a measurable effect in evaluations."""
    found = PASSAGE_ONE.search(_user_message(request))
    if found is None:
        return CANNOT
    lines = found.group("text").strip().splitlines()
    body = " ".join(lines[1:] if len(lines) > 1 else lines)
    sentence = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
    return f"{sentence} [1]"


QUESTION = re.compile(r"^Question: (?P<question>.+)$", re.MULTILINE)
NUMBERED_TITLE = re.compile(r"^\[(?P<number>\d+)\] (?P<title>.+)$", re.MULTILINE)
CITED_TITLE = re.compile(r"\{(?P<wrong>wrong:)?(?P<title>[^{}]+)\}")


def scripted_reply(user: str, script: dict[str, str]) -> str:
    """The scripted answer to the prompt's question, its {Title} citations turned into the
    numbers the prompt gave those passages. A title that was not retrieved cites nothing;
    {wrong:Title} cites the first passage with another title."""
    found = QUESTION.search(user)
    reply = script.get(found.group("question").strip()) if found else None
    if reply is None:
        return CANNOT
    titles = [(m.group("number"), m.group("title").strip()) for m in NUMBERED_TITLE.finditer(user)]

    def cite(match: re.Match[str]) -> str:
        title = match.group("title").strip()
        if match.group("wrong"):
            number = next((n for n, t in titles if t != title), None)
        else:
            number = next((n for n, t in titles if t == title), None)
        return f"[{number}]" if number else ""

    return CITED_TITLE.sub(cite, reply)


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
