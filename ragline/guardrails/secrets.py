"""Credentials that must never reach a log, a stored job, a prompt or an answer.

Patterns for the common providers' key formats (the ones secret scanners such as gitleaks
and GitHub push protection look for) plus `name = value` assignments of keys, tokens and
passwords. Each match is a span with its rule id, `secret.<kind>`.
"""

from __future__ import annotations

import re

from ragline.guardrails.pii import Span

SECRET_LABEL = "SECRET"  # noqa: S105 (a placeholder label, not a secret)

PATTERNS: dict[str, re.Pattern[str]] = {
    "private_key": re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"
        r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----|[\s\S]*)"
    ),
    "aws_access_key": re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b"),
    "github_token": re.compile(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"
    ),
    "gitlab_token": re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    "slack_token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    "stripe_key": re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b"),
    "google_api_key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "openai_key": re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b"),
    "ragline_key": re.compile(r"\brl_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}"),
    "webhook_secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=]{20,}"),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "url_credentials": re.compile(r"(?<=://)[^/\s:@]{1,64}:[^/\s@]{1,128}(?=@)"),
    # key = value; only the value is the secret.
    "assignment": re.compile(
        r"(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|token|"
        r"password|passwd|pwd|client[_-]?secret)\b[\"']?\s*[:=]\s*[\"']?(?P<value>[^\s\"',;]{8,})"
    ),
}


def find_secrets(text: str) -> list[tuple[str, Span]]:
    """(rule id, span) for every credential in text; spans may overlap (one secret can
    match two patterns), the redaction resolves that."""
    found: list[tuple[str, Span]] = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            group = "value" if "value" in pattern.groupindex else 0
            start, end = match.span(group)
            found.append((f"secret.{kind}", Span(SECRET_LABEL, start, end)))
    return found
