"""`eval report`: one self-contained, escaped HTML page, parsed with the standard library's
html.parser. Runs are built from synthetic item results made by `score_item`. No database."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from ragline.config import DEFAULT_TOLERANCES
from ragline.evaluation.dataset import EvalItem
from ragline.evaluation.report import interval, render_report
from ragline.evaluation.run import score_item
from ragline.evaluation.summary import BY_NAME, METRICS, summarise
from ragline.models import EvalRun

GOLD = "hr/annual-leave"
SAMPLES = 300
SVG_NS = "http://www.w3.org/2000/svg"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source"}
ATTACK = "<script>alert(1)</script>"


class Page(HTMLParser):
    """The parts of the page the tests look at: tags, attributes, tables and nesting."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.ends: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self.text: list[str] = []
        self.feed(html)
        self.close()
        if self.open:
            self.problems.append(f"never closed: {self.open}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))  # <line/>, <polyline/>: nothing to close

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.starts if tag == name]

    def table_after(self, heading: str) -> list[list[str]]:
        """The first table whose header row starts with `heading`."""
        return next(t for t in self.tables if t and t[0] and t[0][0] == heading)


def judged(number: int, **fields: Any) -> EvalItem:
    return EvalItem(
        id=f"q{number:03}",
        question=fields.pop("question", f"question {number}?"),
        gold_documents=[GOLD],
        **fields,
    )


def scored(
    item: EvalItem,
    *,
    found: bool = True,
    status: str = "answered",
    answer: str | None = "twenty five days",
    latency_ms: float = 100.0,
    cost: float = 0.001,
) -> dict[str, Any]:
    return score_item(
        item,
        question=item.question,
        status=status,
        reason=None if status == "answered" else "low_confidence",
        answer=answer,
        documents=[GOLD] if found else ["it/vpn"],
        latency_ms=latency_ms,
        cost=cost,
    )


def make_run(
    items: list[dict[str, Any]],
    run_id: str = "ev_a",
    *,
    name: str = "",
    complete: bool = True,
    note: str | None = None,
    subject: dict[str, Any] | None = None,
) -> EvalRun:
    return EvalRun(
        id=run_id,
        name=name or run_id,
        dataset="eval/guardrails.jsonl",
        dataset_hash="h1",
        complete=complete,
        subject=subject
        or {"prompt_version": "v1", "model": "m", "index_version": "i1", "top_k": 5},
        summary=summarise(items),
        items=items,
        note=note,
    )


def full_items(
    lost: frozenset[int] | set[int] = frozenset(),
    escalated: frozenset[int] | set[int] = frozenset(),
) -> list[dict[str, Any]]:
    """60 items with every metric, tagged hr, it or nothing; item 7 asks an attack."""
    items = []
    for k in range(60):
        item = judged(
            k,
            question=f"{ATTACK} leave?" if k == 7 else f"question {k}?",
            gold_answer="employees get twenty five days",
            must_include=["twenty five"],
            expected="answered",
            tags=[["hr"], ["it"], ["hr", "it"], []][k % 4],
        )
        status = "escalated" if k in escalated else "answered"
        items.append(scored(item, found=k not in lost, status=status, latency_ms=80 + 13 * k))
    return items


def baseline() -> EvalRun:
    return make_run(full_items(), "ev_base", name="baseline")


def regressing() -> EvalRun:
    return make_run(full_items(lost=set(range(0, 60, 3)), escalated={7, 8}), "ev_cand")


def section(html: str, heading: str) -> str:
    """The text from the <h2> starting with `heading` to the next <h2> (or the end)."""
    start = html.index(f"<h2>{heading}")
    end = html.find("<h2>", start + 1)
    return html[start : end if end != -1 else len(html)]


def render(runs: list[EvalRun]) -> str:
    return render_report(runs, DEFAULT_TOLERANCES, samples=SAMPLES)


# -- the page ------------------------------------------------------------------------------


def test_the_page_is_well_formed() -> None:
    html = render([baseline(), regressing()])
    page = Page(html)
    assert page.problems == []
    assert html.startswith("<!doctype html>")
    for tag in ("table", "svg", "figure", "tr", "td", "h2", "p"):
        assert len(page.tags(tag)) == page.ends.count(tag), tag
    assert all(len(row) == len(table[0]) for table in page.tables for row in table)


def test_the_page_is_self_contained() -> None:
    html = render([baseline(), regressing()])
    page = Page(html)
    for tag in ("script", "link", "img", "iframe", "object", "embed", "base"):
        assert page.tags(tag) == [], tag
    for _, attrs in page.starts:
        assert not {"src", "href", "srcset", "action"} & set(attrs)
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert "@import" not in html and "url(" not in html
    # the only address is the SVG namespace, once per <svg>
    assert re.findall(r"https?://[^\s\"'<>]*", html) == [SVG_NS] * len(page.tags("svg"))
    assert all(svg["xmlns"] == SVG_NS for svg in page.tags("svg"))


def test_one_chart_per_metric_with_data_and_one_for_latency() -> None:
    page = Page(render([baseline(), regressing()]))
    labels = [svg["aria-label"] for svg in page.tags("svg")]
    assert labels == [m.name for m in METRICS] + ["latency"]


def test_metrics_no_run_has_data_for_get_no_chart() -> None:
    plain = [scored(EvalItem(id=f"p{k}", question="hi?"), latency_ms=50 + k) for k in range(10)]
    html = render([make_run(plain), make_run(plain, "ev_b")])
    page = Page(html)
    assert page.problems == []
    labels = [svg["aria-label"] for svg in page.tags("svg")]
    always = ["escalation_rate", "latency_p50_ms", "latency_p95_ms", "cost_per_job"]
    assert labels == [*always, "latency"]
    assert "nDCG@10" not in html
    assert page.table_after("tag")[0][2:] == ["escalation rate"]  # the only tag metric left


def test_a_metric_only_one_run_has_says_no_data_for_the_other() -> None:
    plain = [scored(EvalItem(id=f"q{k:03}", question="hi?")) for k in range(60)]
    html = render([baseline(), make_run(plain, "ev_plain")])
    assert Page(html).problems == []
    ndcg = html[html.index('aria-label="ndcg@10"') :]
    ndcg = ndcg[: ndcg.index("</svg>")]
    assert ndcg.count("<rect") == 1 and "no data" in ndcg
    # paired over items both runs can score: nDCG is not compared
    compared = Page(section(html, "Compared")).tables[0]
    assert "ndcg@10" not in [row[0] for row in compared]


def test_run_names_and_questions_are_escaped() -> None:
    a = make_run(full_items(), "ev_a", name=f'{ATTACK} & "quotes"')
    b = make_run(full_items(escalated={7}), "ev_b")
    html = render([a, b])
    page = Page(html)
    assert ATTACK not in html
    assert page.tags("script") == []
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, h1, runs, item
    assert "&amp; &quot;quotes&quot;" in html
    changed = page.table_after("item")
    assert changed[1][:2] == ["q007", f"{ATTACK} leave?"]  # as text, once parsed
    assert changed[1][3:] == ["answered", "escalated low_confidence"]


def test_every_subject_field_is_escaped() -> None:
    items = full_items()
    subject = {"prompt_version": ATTACK, "model": ATTACK, "index_version": ATTACK}
    html = render([make_run(items, subject={**subject, "top_k": ATTACK})])
    assert ATTACK not in html


# -- the sections ------------------------------------------------------------------------------


def test_a_regressing_run_is_marked_in_the_comparison() -> None:
    html = render([baseline(), regressing()])
    compared = section(html, "Compared with the first run")
    assert "ev_base → ev_cand (paired over items)" in compared
    rows = {row[0]: row for row in Page(compared).tables[0][1:]}
    assert rows["ndcg@10"][-1] == "REGRESSED"
    assert rows["escalation_rate"][-1] == "no significant change"  # 2 of 60: +0.033 < 0.05
    assert rows["latency_p95_ms"][-1] == "no significant change"
    assert '<td class="bad">REGRESSED</td>' in compared
    a, b = float(rows["ndcg@10"][1]), float(rows["ndcg@10"][2])
    assert (a, b) == (1.0, pytest.approx(2 / 3, abs=1e-3))


def test_an_improvement_is_marked_good() -> None:
    compared = section(render([regressing(), baseline()]), "Compared")
    assert '<td class="good">improved</td>' in compared
    assert "REGRESSED" not in compared


def test_each_tag_has_a_row() -> None:
    page = Page(render([baseline(), regressing()]))
    tags = page.table_after("tag")
    assert [row[0] for row in tags[1:]] == ["(untagged)", "hr", "it"]
    assert [row[1] for row in tags[1:]] == ["15/15", "30/30", "30/30"]
    header = tags[0]
    assert header[2:] == [
        "nDCG@10",
        "answer token F1",
        "must-include hits",
        "outcome accuracy",
        "escalation rate",
    ]


def test_a_single_run_has_no_comparison() -> None:
    html = render([baseline()])
    page = Page(html)
    assert page.problems == []
    assert "Compared with the first run" not in html and "Changed outcomes" not in html
    runs = page.table_after("run")
    assert len(runs) == 2 and runs[1][0] == "ev_base" and runs[1][1] == "baseline"
    assert "By tag" in html and "Latency distribution" in html


def test_an_incomplete_run_is_marked_and_not_compared() -> None:
    stopped = make_run(
        full_items()[:20], "ev_stopped", complete=False, note="stopped after 20 of 60 items"
    )
    html = render([baseline(), stopped])
    page = Page(html)
    assert page.problems == []
    runs = page.table_after("run")
    assert runs[2][0] == "ev_stopped incomplete: stopped after 20 of 60 items"
    assert "Compared with the first run" not in html and "REGRESSED" not in html
    assert '<span class="bad">incomplete: stopped after 20 of 60 items</span>' in html


def test_changed_outcomes_say_so_when_none_changed() -> None:
    html = render([baseline(), make_run(full_items(), "ev_again")])
    assert "no item changed outcome between ev_base and ev_again" in html
    rows = Page(section(html, "Compared")).tables[0][1:]
    assert {row[-1] for row in rows} == {"no significant change"}


def test_the_report_is_deterministic() -> None:
    runs = [baseline(), regressing()]
    assert render(runs) == render(runs)


# -- a run's interval ----------------------------------------------------------------------------


def test_interval_brackets_the_value_and_is_reproducible() -> None:
    items = full_items(lost={1, 2, 3, 10, 20, 30, 40})
    value, low, high = interval(items, BY_NAME["ndcg@10"], 1000, 0.95)
    assert value == pytest.approx(53 / 60)
    assert low < value < high <= 1.0
    assert interval(items, BY_NAME["ndcg@10"], 1000, 0.95) == (value, low, high)
    narrow = interval(items, BY_NAME["ndcg@10"], 1000, 0.5)
    assert low < narrow[1] <= narrow[2] < high
    p95 = interval(items, BY_NAME["latency_p95_ms"], 1000, 0.95)
    assert p95[1] <= p95[0] <= p95[2]


def test_interval_of_a_constant_collapses_and_of_nothing_is_nan() -> None:
    items = full_items()
    assert interval(items, BY_NAME["ndcg@10"], 200, 0.95) == (1.0, 1.0, 1.0)
    plain = [scored(EvalItem(question="hi?"))]
    assert all(math.isnan(v) for v in interval(plain, BY_NAME["token_f1"], 200, 0.95))
