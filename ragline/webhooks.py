"""Standard Webhooks (https://www.standardwebhooks.com): secrets, signatures, and which
callback URLs ragline may call.

A secret reads `whsec_<base64 of 24 random bytes>`. A delivery carries three headers:
`webhook-id` (stable across retries, for de-duplication), `webhook-timestamp` (Unix seconds)
and `webhook-signature: v1,<base64 HMAC-SHA256 over "id.timestamp.body">`, which receivers
verify with the maintained `standardwebhooks` libraries in any language. After a secret is
rotated, deliveries carry a signature by each secret (space-separated, as the standard
allows) until the old one's overlap ends, so receivers switch over without failing one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

from ragline.errors import InvalidInput

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secrets_in_use: list[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The delivery's headers, signed by every secret in use (the current one first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(secret, message_id, timestamp, body) for secret in secrets_in_use
        ),
        "content-type": "application/json",
        "user-agent": "ragline-webhooks/1",
    }


def check_callback_url(url: str, *, allow_private: bool) -> None:
    """Refuse what ragline must not call: other schemes, credentials in the URL, and
    (unless allowed) hosts that are or resolve to private, loopback, link-local or reserved
    addresses, which would let a submitter reach internal services (SSRF). Checked at
    admission and again before every delivery (DNS can change in between)."""
    if len(url) > 2048:
        raise InvalidInput("callback_url is longer than 2,048 characters", field="callback_url")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise InvalidInput(
            "callback_url must not contain spaces or control characters", field="callback_url"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("callback_url must be an http(s) URL with a host", field="callback_url")
    if parts.username or parts.password:
        raise InvalidInput("callback_url must not carry credentials", field="callback_url")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port)}
    except (OSError, ValueError):
        raise InvalidInput(
            f"callback_url host {parts.hostname} does not resolve", field="callback_url"
        ) from None
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if ip.version == 6 and ip in _NAT64:  # an IPv4 address behind a NAT64 gateway
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if not ip.is_global:
            raise InvalidInput(
                f"callback_url host {parts.hostname} is a private or loopback address "
                "(deliveries.allow_private_targets allows it)",
                field="callback_url",
            )
