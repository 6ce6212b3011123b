"""What a page says after a redirect ("item 7: approve"). The redirect carries a message
code and its numbers, never text: a link with ?msg=<anything> cannot make a ragline page
say what its author wants (a phishing line in the page's own voice)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from ragline.models import Decision

TEXTS = {
    "claimed": "claimed",
    "released": "released",
    "decided": "item {item}: {decision}",
    "expired": "the form expired: reload and try again",
    "logged_out": "logged out",
    "bulk": "{done} marked good",
    "bulk_skipped": "{done} marked good; skipped {skipped}",
    "promoted": "version {version} promoted: it answers from now on",
    "rolled_back": "rolled back: version {version} is active",
}
_NUMBERS = ("item", "version", "done")
_DECISIONS = frozenset(decision.value for decision in Decision)
MAX_LISTED = 50


def redirect_to(path: str, code: str, **values: object) -> str:
    """path?msg=code&name=value… (path may hold a query already)."""
    assert code in TEXTS, code
    query = urlencode({"msg": code, **{name: str(value) for name, value in values.items()}})
    return f"{path}{'&' if '?' in path else '?'}{query}"


def shown(query: Mapping[str, str]) -> str | None:
    """The message a page's query asks for, or None for an unknown code or bad values."""
    template = TEXTS.get(query.get("msg", ""))
    if template is None:
        return None
    values: dict[str, str] = {}
    for name in _NUMBERS:
        raw = query.get(name, "")
        if f"{{{name}}}" in template:
            if not is_number(raw):
                return None
            values[name] = raw
    if "{decision}" in template:
        decision = query.get("decision", "")
        if decision not in _DECISIONS:
            return None
        values["decision"] = decision
    if "{skipped}" in template:
        listed = [part for part in query.get("skipped", "").split(",") if part]
        if not listed or len(listed) > MAX_LISTED or not all(map(is_number, listed)):
            return None
        values["skipped"] = ", ".join(listed)
    return template.format(**values)


def is_number(raw: str) -> bool:
    """An id or count as a link carries it: ASCII digits, at most a 64-bit integer's 19."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 19
