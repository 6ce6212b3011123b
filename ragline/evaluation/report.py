"""`ragline eval report RUN [RUN…] --html out.html`: one self-contained HTML file (inline
CSS and SVG, no scripts, nothing fetched) with per-metric bars and their bootstrap
intervals, the decision's trade-off curve and reliability diagram, the latency
distributions, a per-tag breakdown, the comparison of each run with the first, and the
items whose outcome changed."""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np

from ragline.decision.training import auroc, expected_calibration_error, reliability, tradeoff
from ragline.errors import InvalidInput
from ragline.evaluation.compare import REGRESSED, compare_runs
from ragline.evaluation.summary import METRICS, Metric, by_tag, values
from ragline.models import EvalRun

COLOURS = ("#3465a4", "#f57900", "#4e9a06", "#75507b", "#c4a000", "#cc0000", "#06989a")
TAG_METRICS = ("ndcg@10", "must_include", "token_f1", "outcome_accuracy", "escalation_rate")


def interval(
    items: list[dict[str, Any]], metric: Metric, samples: int, level: float, seed: int = 0
) -> tuple[float, float, float]:
    """The run's value of the metric and its bootstrap interval over the run's items."""
    found = np.array(values(items, metric), dtype=float)
    if found.size == 0:
        return math.nan, math.nan, math.nan
    value = metric.aggregate(found.tolist())
    index = np.random.default_rng(seed).integers(0, found.size, size=(samples, found.size))
    if metric.percentile is None:
        estimates = found[index].mean(axis=1)
    else:
        estimates = np.percentile(found[index], metric.percentile, axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return value, float(low), float(high)


def render_report(
    runs: list[EvalRun],
    tolerances: dict[str, float],
    samples: int = 2000,
    level: float = 0.95,
) -> str:
    sections = [
        _runs_table(runs),
        _metric_bars(runs, samples, level),
        _comparisons(runs, tolerances, samples, level),
        _decision(runs),
        _latency(runs),
        _tags(runs),
        _changed_items(runs),
    ]
    body = "\n".join(s for s in sections if s)
    title = "ragline evaluation: " + ", ".join(escape(r.name or r.id) for r in runs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 1.4em; }}
h2 {{ font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin: .5em 0; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.bad {{ color: #b00; font-weight: bold; }} .good {{ color: #2a7a00; }}
.swatch {{ display: inline-block; width: .9em; height: .9em; margin-right: .3em;
  vertical-align: middle; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }} figcaption {{ font-weight: bold; }}
.bar {{ display: inline-block; height: .7em; background: #3465a4; vertical-align: middle; }}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def _swatch(position: int) -> str:
    colour = COLOURS[position % len(COLOURS)]
    return f'<span class="swatch" style="background:{colour}"></span>'


def _runs_table(runs: list[EvalRun]) -> str:
    rows = []
    for position, run in enumerate(runs):
        s = run.subject
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(run.summary.get("outcomes", {}).items()))
        state = (
            ""
            if run.complete
            else f' <span class="bad">incomplete: {escape(run.note or "")}</span>'
        )
        rows.append(
            "<tr>"
            f"<td>{_swatch(position)}{escape(run.id)}{state}</td><td>{escape(run.name)}</td>"
            f"<td>{escape(run.dataset)}</td><td>{escape(str(s.get('prompt_version')))}</td>"
            f"<td>{escape(str(s.get('model')))} ({escape(str(s.get('model_id')))})</td>"
            f"<td>{escape(str(s.get('index_version')))}</td>"
            f"<td class=num>{escape(str(s.get('top_k')))}</td>"
            f"<td class=num>{len(run.items)}</td><td>{escape(outcomes)}</td>"
            f"<td>{run.created_at:%Y-%m-%d %H:%M} UTC</td></tr>"
        )
    return (
        "<h2>Runs</h2><table><tr><th>run</th><th>name</th><th>dataset</th><th>prompt</th>"
        "<th>model</th><th>index</th><th>top_k</th><th>items</th><th>outcomes</th>"
        "<th>created</th></tr>" + "".join(rows) + "</table>"
    )


def _metric_bars(runs: list[EvalRun], samples: int, level: float) -> str:
    figures = []
    for metric in METRICS:
        points = [interval(run.items, metric, samples, level) for run in runs]
        if all(math.isnan(p[0]) for p in points):
            continue
        figures.append(_bar_chart(metric, points))
    caption = f"bars: the run's value; whiskers: its {round(level * 100)}% bootstrap interval"
    return f"<h2>Metrics</h2><p>{caption}</p><div class=figures>{''.join(figures)}</div>"


def _bar_chart(metric: Metric, points: list[tuple[float, float, float]]) -> str:
    width, row, left = 320, 26, 8
    height = row * len(points) + 24
    finite = [p[2] for p in points if not math.isnan(p[2])] + [
        p[0] for p in points if not math.isnan(p[0])
    ]
    unit = metric.percentile is None and metric.name not in ("cost_per_job",)
    top = 1.0 if unit else (max(finite) * 1.1 or 1.0)
    scale = (width - left - 70) / top
    parts = []
    for position, (value, low, high) in enumerate(points):
        y = 8 + position * row
        colour = COLOURS[position % len(COLOURS)]
        if math.isnan(value):
            parts.append(f'<text x="{left}" y="{y + 14}" font-size="11">no data</text>')
            continue
        parts.append(
            f'<rect x="{left}" y="{y}" width="{value * scale:.1f}" height="18" fill="{colour}" '
            f'opacity="0.8"><title>{value:.4f} [{low:.4f}, {high:.4f}]</title></rect>'
            f'<line x1="{left + low * scale:.1f}" x2="{left + high * scale:.1f}" y1="{y + 9}" '
            f'y2="{y + 9}" stroke="#000" stroke-width="1.5"/>'
            f'<line x1="{left + low * scale:.1f}" x2="{left + low * scale:.1f}" y1="{y + 4}" '
            f'y2="{y + 14}" stroke="#000"/>'
            f'<line x1="{left + high * scale:.1f}" x2="{left + high * scale:.1f}" y1="{y + 4}" '
            f'y2="{y + 14}" stroke="#000"/>'
            f'<text x="{left + max(value, high) * scale + 4:.1f}" y="{y + 13}" '
            f'font-size="11">{_short(value)}</text>'
        )
    axis = f"0 … {_short(top)}"
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="10" fill="#666">{axis}</text>')
    return (
        f"<figure><figcaption>{escape(metric.label or metric.name)}"
        f"{' (lower is better)' if not metric.higher_is_better else ''}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(metric.name)}">{"".join(parts)}</svg></figure>'
    )


def _comparisons(
    runs: list[EvalRun], tolerances: dict[str, float], samples: int, level: float
) -> str:
    if len(runs) < 2 or not all(r.complete for r in runs):
        return ""
    tables = []
    for other in runs[1:]:
        try:
            comparison = compare_runs(runs[0], other, tolerances, samples=samples, level=level)
        except InvalidInput as error:  # e.g. runs on different datasets
            tables.append(f"<h3>{escape(runs[0].id)} → {escape(other.id)}</h3>")
            tables.append(f"<p>not compared: {escape(str(error))}</p>")
            continue
        rows = []
        for d in comparison.deltas:
            css = "bad" if d.verdict == REGRESSED else "good" if d.verdict == "improved" else ""
            tolerance = "-" if d.tolerance is None else _short(d.tolerance)
            rows.append(
                f"<tr><td>{escape(d.metric.name)}</td><td class=num>{_short(d.a)}</td>"
                f"<td class=num>{_short(d.b)}</td><td class=num>{d.delta:+.4g}</td>"
                f"<td class=num>[{d.low:+.4g}, {d.high:+.4g}]</td><td class=num>{tolerance}</td>"
                f'<td class="{css}">{escape(d.verdict)}</td></tr>'
            )
        warnings = "".join(f"<p>warning: {escape(w)}</p>" for w in comparison.warnings)
        tables.append(
            f"<h3>{escape(runs[0].id)} → {escape(other.id)} (paired over items)</h3>"
            "<table><tr><th>metric</th><th>A</th><th>B</th><th>B - A</th>"
            f"<th>{round(level * 100)}% CI</th><th>tolerance</th><th>verdict</th></tr>"
            + "".join(rows)
            + "</table>"
            + warnings
        )
    return "<h2>Compared with the first run</h2>" + "".join(tables)


def _latency(runs: list[EvalRun]) -> str:
    series = [
        [i["scores"]["latency_ms"] for i in run.items if "latency_ms" in i["scores"]]
        for run in runs
    ]
    everything = [v for s in series for v in s]
    if not everything:
        return ""
    width, height, pad = 640, 220, 30
    top = float(np.percentile(everything, 99)) or 1.0
    bins = np.linspace(0, top, 31)
    lines, peak = [], 1
    counts = []
    for latencies in series:
        clipped = np.clip(np.array(latencies, dtype=float), 0, top)
        count, _ = np.histogram(clipped, bins=bins)
        counts.append(count)
        peak = max(peak, int(count.max()) if count.size else 1)
    step = (width - 2 * pad) / (len(bins) - 1)
    for position, count in enumerate(counts):
        points = " ".join(
            f"{pad + (k + 0.5) * step:.1f},{height - pad - c / peak * (height - 2 * pad):.1f}"
            for k, c in enumerate(count)
        )
        colour = COLOURS[position % len(COLOURS)]
        lines.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
    ticks = "".join(
        f'<text x="{pad + k * (width - 2 * pad) / 5:.1f}" y="{height - 10}" font-size="10" '
        f'fill="#666">{top * k / 5:.0f}</text>'
        for k in range(6)
    )
    frame = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#999"/>'
    )
    return (
        "<h2>Latency distribution</h2><p>worker time per item in ms (all stages), counts per "
        "bin; the last bin holds everything above the 99th percentile</p>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="latency">{frame}{"".join(lines)}{ticks}</svg>'
    )


def _labelled(run: EvalRun) -> tuple[list[float], list[int]]:
    """Confidence and answerability label of the items that say what should happen and
    reached the scorer."""
    scored = [
        i
        for i in run.items
        if i.get("expected") in ("answered", "escalated") and i.get("confidence") is not None
    ]
    return [float(i["confidence"]) for i in scored], [
        int(i["expected"] == "answered") for i in scored
    ]


def _decision(runs: list[EvalRun]) -> str:
    """The trade-off (answerable answered vs unanswerable escalated, one point per
    threshold) and the reliability diagram (predicted vs observed share answerable)."""
    labelled = [(run, *_labelled(run)) for run in runs]
    labelled = [(r, p, y) for r, p, y in labelled if 0 < sum(y) < len(y)]
    if not labelled:
        return ""
    size, pad = 260, 34
    span = size - 2 * pad

    def xy(x: float, y: float) -> str:
        return f"{pad + x * span:.1f},{size - pad - y * span:.1f}"

    def frame(x_label: str, y_label: str) -> str:
        return (
            f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" '
            'stroke="#999"/>'
            f'<text x="{size / 2:.0f}" y="{size - 6}" font-size="11" text-anchor="middle" '
            f'fill="#444">{x_label}</text>'
            f'<text x="10" y="{size / 2:.0f}" font-size="11" text-anchor="middle" fill="#444" '
            f'transform="rotate(-90 10 {size / 2:.0f})">{y_label}</text>'
            + "".join(
                f'<text x="{pad + k * span / 4:.1f}" y="{size - pad + 12}" font-size="9" '
                f'fill="#666" text-anchor="middle">{k / 4:.2f}</text>'
                f'<text x="{pad - 4}" y="{size - pad - k * span / 4 + 3:.1f}" font-size="9" '
                f'fill="#666" text-anchor="end">{k / 4:.2f}</text>'
                for k in range(5)
            )
        )

    curves, diagrams, rows = [], [], []
    for position, (run, probabilities, labels) in enumerate(labelled):
        colour = COLOURS[position % len(COLOURS)]
        points = tradeoff(probabilities, labels)
        curves.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
            + " ".join(xy(p.escalated, p.answered) for p in points)
            + '"/>'
        )
        threshold = run.subject.get("threshold", run.subject.get("min_confidence"))
        bins = reliability(probabilities, labels)
        diagrams.append(
            "".join(
                f'<circle cx="{xy(b["predicted"], b["observed"]).split(",")[0]}" '
                f'cy="{xy(b["predicted"], b["observed"]).split(",")[1]}" '
                f'r="{2 + min(6, b["count"] ** 0.5 / 2):.1f}" fill="{colour}" '
                'fill-opacity="0.7"><title>'
                f"{b['count']} items: predicted {b['predicted']:.2f}, observed "
                f"{b['observed']:.2f}</title></circle>"
                for b in bins
            )
        )
        rows.append(
            f"<tr><td>{_swatch(position)}{escape(run.name or run.id)}</td>"
            f"<td>{escape(str(run.subject.get('scorer_version')))}</td>"
            f"<td class=num>{sum(labels)} / {len(labels) - sum(labels)}</td>"
            f"<td class=num>{auroc(probabilities, labels):.3f}</td>"
            f"<td class=num>{expected_calibration_error(probabilities, labels):.3f}</td>"
            f"<td class=num>{'-' if threshold is None else escape(str(threshold))}</td></tr>"
        )
    diagonal = f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#ccc"/>'
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" '
    return (
        "<h2>The decision</h2><p>Items labelled answered or escalated: how many answerable "
        "questions are answered against how many unanswerable ones are escalated as the "
        "threshold moves (up and to the right is better), and whether a confidence of p means "
        "a share p of answerable questions (points on the diagonal are calibrated).</p>"
        "<table><tr><th>run</th><th>scorer</th><th>answerable / unanswerable</th><th>AUROC</th>"
        "<th>calibration error</th><th>threshold</th></tr>"
        + "".join(rows)
        + "</table><div class=figures><figure><figcaption>Trade-off</figcaption>"
        f'{svg}aria-label="trade-off">{frame("unanswerable escalated", "answerable answered")}'
        f"{''.join(curves)}</svg></figure><figure><figcaption>Reliability</figcaption>"
        f'{svg}aria-label="reliability">{frame("predicted", "observed")}{diagonal}'
        f"{''.join(diagrams)}</svg></figure></div>"
    )


def _tags(runs: list[EvalRun]) -> str:
    tagged = [by_tag(run.items) for run in runs]
    tags = sorted({t for groups in tagged for t in groups})
    metrics = [
        m for m in METRICS if m.name in TAG_METRICS and any(values(run.items, m) for run in runs)
    ]
    if not tags or not metrics:
        return ""
    head = "".join(
        f"<th>{escape(m.label or m.name)}<br>"
        + " ".join(_swatch(p) for p in range(len(runs)))
        + "</th>"
        for m in metrics
    )
    rows = []
    for tag in tags:
        cells = []
        for metric in metrics:
            parts = []
            for position, groups in enumerate(tagged):
                found = values(groups.get(tag, []), metric)
                if not found:
                    parts.append("<div>-</div>")
                    continue
                value = metric.aggregate(found)
                colour = COLOURS[position % len(COLOURS)]
                parts.append(
                    f'<div><span class="bar" style="width:{value * 80:.0f}px;background:{colour}">'
                    f"</span> {value:.3f}</div>"
                )
            cells.append("<td>" + "".join(parts) + "</td>")
        counts = "/".join(str(len(groups.get(tag, []))) for groups in tagged)
        rows.append(f"<tr><td>{escape(tag)}</td><td class=num>{counts}</td>{''.join(cells)}</tr>")
    return (
        "<h2>By tag</h2><table><tr><th>tag</th><th>items</th>"
        + head
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def _changed_items(runs: list[EvalRun]) -> str:
    if len(runs) < 2:
        return ""
    first, second = runs[0], runs[1]
    theirs = {i["id"]: i for i in second.items}
    rows = []
    for item in first.items:
        other = theirs.get(item["id"])
        if other is None or other["status"] == item["status"]:
            continue
        rows.append(
            f"<tr><td>{escape(item['id'])}</td><td>{escape(item.get('question') or '')}</td>"
            f"<td>{escape(str(item.get('expected') or '-'))}</td>"
            f"<td>{escape(item['status'])} {escape(item.get('reason') or '')}</td>"
            f"<td>{escape(other['status'])} {escape(other.get('reason') or '')}</td></tr>"
        )
    if not rows:
        between = f"{escape(first.id)} and {escape(second.id)}"
        return f"<h2>Changed outcomes</h2><p>no item changed outcome between {between}</p>"
    return (
        f"<h2>Changed outcomes ({len(rows)})</h2><table><tr><th>item</th><th>question</th>"
        f"<th>expected</th><th>{escape(first.id)}</th><th>{escape(second.id)}</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _short(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}" if value >= 0.001 or value == 0 else f"{value:.2e}"
