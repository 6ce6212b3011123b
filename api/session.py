"""The review page's sessions: an API key with the reviewer role is exchanged once, at the
login form, for a signed cookie; the key itself is never stored in the browser.

The cookie holds the key id, an expiry and a CSRF token, HMAC-SHA256-signed with the
server's session secret. It is HttpOnly (no script can read it), SameSite=Strict (no other
site can send it) and Secure behind HTTPS. Every form carries the CSRF token, which must
match the session's; the key is checked again (revoked, expired, still a reviewer) on every
request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ragline.settings import Settings

COOKIE = "ragline_review"
LIFETIME_S = 8 * 3600


@dataclass(frozen=True)
class Session:
    key_id: str
    csrf: str
    expires: int


class SessionSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_settings(cls, settings: Settings) -> SessionSigner:
        configured = settings.session_secret
        if configured is not None and configured.get_secret_value():
            return cls(configured.get_secret_value().encode())
        return cls(_stored_secret(settings.data_dir / "session-secret"))

    def issue(self, key_id: str) -> tuple[str, Session]:
        session = Session(key_id, secrets.token_urlsafe(24), int(time.time()) + LIFETIME_S)
        payload = base64.urlsafe_b64encode(
            json.dumps({"k": session.key_id, "c": session.csrf, "e": session.expires}).encode()
        ).decode()
        return f"{payload}.{self._mac(payload)}", session

    def read(self, cookie: str | None) -> Session | None:
        """The session, or None when absent, tampered with or expired."""
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload.encode()))
            session = Session(str(data["k"]), str(data["c"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _stored_secret(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48).encode()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secret)
    return secret
