"""The web pages' session cookie and the checks around logging in and out.

An API key is exchanged once, at the log-in form, for a session (ragline/page_sessions.py):
the cookie holds only a random token, and the server the session behind it, so log-out,
revoking the key and the idle and absolute timeouts end it for every copy of the cookie.
The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site sends it) and
Secure behind HTTPS. Every form carries the session's CSRF token, log-out included.

Logging in has no session to hold a token yet, so the log-in form is refused when the
browser says the request came from another site (Origin, Sec-Fetch-Site): otherwise a page
elsewhere could sign a victim's browser into the attacker's account.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request, Response

from ragline.models import utcnow
from ragline.page_sessions import SignedIn

COOKIE = "ragline_review"
PATH = "/review"


def set_cookie(response: Response, request: Request, token: str, session: SignedIn) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(0, int((session.expires_at - utcnow()).total_seconds())),
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def forget_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH)


def token_of(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def from_this_site(request: Request) -> bool:
    """False when the browser says the form was posted from another site. A client that
    is not a browser sends neither header and is let through: it gains nothing by being
    signed in to a cookie it holds itself."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    # Behind a TLS-terminating proxy the scheme differs; the host and port must not.
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc.lower() == host.lower()
