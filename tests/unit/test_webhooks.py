"""Standard Webhooks signing, checked against the receivers' maintained library, and the
callback URL rules (schemes, credentials, length and SSRF targets). No database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ragline.errors import InvalidInput
from ragline.webhooks import SECRET_PREFIX, check_callback_url, headers, new_secret, sign

BODY = json.dumps({"type": "job.answered", "data": {"id": "abc", "answer": "25 days"}}).encode()
MESSAGE_ID = "msg_0123456789abcdef0123456789abcdef"


# -- secrets and signatures -----------------------------------------------------------------


def test_new_secret_has_the_prefix_and_is_new_each_time() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(secret.startswith(SECRET_PREFIX) for secret in secrets)
    assert all(secret.startswith("whsec_") for secret in secrets)
    Webhook(secrets.pop())  # the library accepts the format


def test_signed_headers_verify_with_the_library() -> None:
    secret = new_secret()
    sent = headers([secret], MESSAGE_ID, int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, sent) == json.loads(BODY)
    assert sent["webhook-id"] == MESSAGE_ID
    assert sent["content-type"] == "application/json"


def test_sign_equals_the_library_signature() -> None:
    secret = new_secret()
    timestamp = int(time.time())
    expected = Webhook(secret).sign(
        MESSAGE_ID, datetime.fromtimestamp(timestamp, tz=UTC), BODY.decode()
    )
    assert sign(secret, MESSAGE_ID, timestamp, BODY) == expected
    assert expected.startswith("v1,")


def test_a_tampered_body_fails() -> None:
    secret = new_secret()
    sent = headers([secret], MESSAGE_ID, int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"25 days", b"99 days"), sent)


def test_another_message_id_fails() -> None:
    secret = new_secret()
    sent = headers([secret], MESSAGE_ID, int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**sent, "webhook-id": "msg_other"})


def test_a_timestamp_older_than_five_minutes_fails() -> None:
    secret = new_secret()
    stale = int(time.time()) - 5 * 60 - 30
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers([secret], MESSAGE_ID, stale, BODY))


def test_a_timestamp_within_the_tolerance_passes() -> None:
    secret = new_secret()
    recent = int(time.time()) - 4 * 60
    assert Webhook(secret).verify(BODY, headers([secret], MESSAGE_ID, recent, BODY))


def test_another_secret_fails() -> None:
    sent = headers([new_secret()], MESSAGE_ID, int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)


def test_during_a_rotation_receivers_holding_either_secret_verify() -> None:
    new, old = new_secret(), new_secret()
    sent = headers([new, old], MESSAGE_ID, int(time.time()), BODY)
    assert len(sent["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(BODY, sent) == json.loads(BODY)
    assert Webhook(old).verify(BODY, sent) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)


# -- callback URLs --------------------------------------------------------------------------


def _refused(url: str, *, allow_private: bool) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check_callback_url(url, allow_private=allow_private)
    assert caught.value.field == "callback_url"
    return caught.value


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "93.184.216.34/hook",  # no scheme
        "http:///hook",  # no host
        "https://",
        "",
    ],
)
def test_only_http_urls_with_a_host(url: str, allow_private: bool) -> None:
    assert "http(s) URL with a host" in str(_refused(url, allow_private=allow_private))


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@93.184.216.34/hook",
        "https://user@93.184.216.34/hook",
        "https://:pw@93.184.216.34/hook",
    ],
)
def test_credentials_in_the_url_are_refused(url: str, allow_private: bool) -> None:
    assert "credentials" in str(_refused(url, allow_private=allow_private))


@pytest.mark.parametrize("allow_private", [False, True])
def test_a_url_longer_than_2048_characters_is_refused(allow_private: bool) -> None:
    base = "https://93.184.216.34/"
    check_callback_url(base + "a" * (2048 - len(base)), allow_private=allow_private)
    assert "2,048" in str(_refused(base + "a" * (2049 - len(base)), allow_private=allow_private))


PRIVATE = [
    "http://127.0.0.1/x",
    "http://127.0.0.1:8080/x",
    "http://10.0.0.5/x",
    "http://192.168.1.1/x",
    "http://172.16.0.1/x",
    "http://100.64.0.1/x",  # carrier-grade NAT
    "http://0.0.0.0/x",
    "http://[::1]/x",
    "http://[fd00::1]/x",
    "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped loopback
    "http://169.254.169.254/",  # cloud metadata
    "http://localhost/",
    "http://LOCALHOST:9000/x",
    "http://127.1/x",  # short form of 127.0.0.1
    "http://2130706433/x",  # 127.0.0.1 as one decimal number
    "https://127.0.0.1/x",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_and_loopback_targets_are_refused(url: str) -> None:
    error = _refused(url, allow_private=False)
    assert "private or loopback" in str(error)
    assert "allow_private_targets" in str(error)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_targets_are_allowed_when_configured(url: str) -> None:
    check_callback_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",
        "https://93.184.216.34:8443/hook?x=1",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    ],
)
def test_a_public_ip_literal_is_accepted(url: str) -> None:
    check_callback_url(url, allow_private=False)


def test_a_host_that_does_not_resolve_is_refused() -> None:
    # .invalid never resolves (RFC 6761).
    assert "does not resolve" in str(
        _refused("https://hooks.example.invalid/x", allow_private=False)
    )


def test_an_invalid_port_is_refused() -> None:
    _refused("http://93.184.216.34:99999/x", allow_private=False)


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1f", "\x7f"])
def test_control_characters_are_refused(char: str, allow_private: bool) -> None:
    _refused(f"http://93.184.216.34/hook{char}", allow_private=allow_private)
