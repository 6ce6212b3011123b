"""Charts drawn on the server as inline SVG: no script, no chart library, nothing fetched.

Every piece of text goes into the markup through Markup.format, which escapes it, so a
label a client chose (a feature name) stays text in the SVG as in a table. Numbers are
formatted by the caller's `fmt`; the tables beside the charts carry the exact values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup

PALETTE = (
    "#2f5bd3",
    "#1f7a4d",
    "#b4541a",
    "#b42318",
    "#7a5af8",
    "#0e9384",
    "#c11574",
    "#5d6678",
)
WIDTH, HEIGHT = 560, 190  # the plot and its axes; the legend adds rows below
LEFT, RIGHT, TOP, BOTTOM = 56, 10, 14, 26
MAX_X_LABELS = 10
LEGEND_ROW, CHAR_W, LEGEND_CHARS = 18, 7, 28
HBAR_ROW = 22

Format = Callable[[float], str]


def plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


def bars(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    title: str,
    fmt: Format = plain,
    color: str = PALETTE[0],
) -> Markup:
    """One bar per label."""
    return _bar_chart({title: values}, labels, title, fmt, colors=(color,), legend=False)


def hbars(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    title: str,
    fmt: Format = plain,
    color: str = PALETTE[0],
) -> Markup:
    """One horizontal bar per label, the label on its left and the value at its end: for
    long labels (stage names)."""
    top = max(values, default=0) or 1
    left, right = 150, 90  # room for the labels and for the values
    parts: list[Markup] = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * HBAR_ROW
        width = (WIDTH - left - right) * value / top
        parts.append(
            Markup(
                '<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#1d2330">{}</text>'
                '<rect class="bar" x="{}" y="{}" width="{:.1f}" height="{}" fill="{}">'
                "<title>{}</title></rect>"
                '<text x="{:.1f}" y="{}" font-size="11" fill="#5d6678">{}</text>'
            ).format(
                left - 6,
                y + 12,
                _shortened(label, 22),
                left,
                y + 2,
                width,
                HBAR_ROW - 6,
                color,
                f"{label}: {fmt(value)}",
                left + width + 4,
                y + 12,
                fmt(value),
            )
        )
    height = max(HEIGHT // 2, TOP + len(labels) * HBAR_ROW + 8)
    return _svg(title, parts, [], (), legend=False, empty=not values, height=height)


def stacked_bars(
    series: Mapping[str, Sequence[float]],
    labels: Sequence[str],
    *,
    title: str,
    fmt: Format = plain,
) -> Markup:
    """One bar per label, one segment per series (first series at the bottom)."""
    return _bar_chart(series, labels, title, fmt, colors=PALETTE, legend=True)


def line(
    series: Mapping[str, Sequence[float | None]],
    labels: Sequence[str],
    *,
    title: str,
    fmt: Format = plain,
    top: float | None = None,
) -> Markup:
    """One line per series; None is a gap (e.g. a rate on a day without jobs). `top`: the
    value at the top of the axis (1.0 for rates), else the largest value."""
    values = [v for points in series.values() for v in points if v is not None]
    top = top or max(values, default=0) or 1
    parts = [_axes(labels, top, fmt)]
    for n, (name, points) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        for run in _runs(points):
            coordinates = " ".join(
                f"{_x_center(i, len(labels)):.1f},{_y(v, top):.1f}" for i, v in run
            )
            parts.append(
                Markup(
                    '<polyline class="series" fill="none" stroke="{}" stroke-width="2" '
                    'points="{}"/>'
                ).format(color, coordinates)
            )
        parts.extend(
            Markup(
                '<circle class="point" cx="{:.1f}" cy="{:.1f}" r="3" fill="{}">'
                "<title>{}</title></circle>"
            ).format(
                _x_center(i, len(labels)), _y(v, top), color, f"{labels[i]} · {name}: {fmt(v)}"
            )
            for i, v in enumerate(points)
            if v is not None
        )
    return _svg(title, parts, list(series), PALETTE, legend=True, empty=not values)


def _bar_chart(
    series: Mapping[str, Sequence[float]],
    labels: Sequence[str],
    title: str,
    fmt: Format,
    *,
    colors: Sequence[str],
    legend: bool,
) -> Markup:
    totals = [sum(points[i] for points in series.values()) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    width = _slot(len(labels)) * 0.7
    parts = [_axes(labels, top, fmt)]
    for i, label in enumerate(labels):
        base: float = HEIGHT - BOTTOM
        for n, (name, points) in enumerate(series.items()):
            value = points[i]
            if value <= 0:
                continue
            height = (HEIGHT - BOTTOM - TOP) * value / top
            base -= height
            parts.append(
                Markup(
                    '<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" '
                    'fill="{}"><title>{}</title></rect>'
                ).format(
                    _x_center(i, len(labels)) - width / 2,
                    base,
                    width,
                    height,
                    colors[n % len(colors)],
                    f"{label} · {name}: {fmt(value)}" if legend else f"{label}: {fmt(value)}",
                )
            )
    return _svg(title, parts, list(series), colors, legend=legend, empty=not any(totals))


def _svg(
    title: str,
    parts: list[Markup],
    names: list[str],
    colors: Sequence[str],
    *,
    legend: bool,
    empty: bool,
    height: int = HEIGHT,
) -> Markup:
    """The chart: its parts, a legend below them (names wrapped to the width), and a
    title for screen readers and tooltips."""
    keys = _legend(names, colors) if legend and not empty else []
    plot = height
    height = plot + (keys[-1][0] + LEGEND_ROW if keys else 0)
    body = Markup("").join(parts)
    if empty:
        body += Markup(
            '<text class="empty" x="{}" y="{}" text-anchor="middle" fill="#5d6678">no data</text>'
        ).format(WIDTH / 2, plot / 2)
    for y, x, color, name in keys:
        body += Markup(
            '<rect class="swatch" x="{}" y="{}" width="10" height="10" fill="{}"/>'
            '<text x="{}" y="{}" font-size="12" fill="#1d2330"><title>{}</title>{}</text>'
        ).format(x, plot + y, color, x + 14, plot + y + 9, name, _shortened(name))
    return Markup(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="100%" '
        'role="img" aria-label="{}" font-family="system-ui, sans-serif"><title>{}</title>{}</svg>'
    ).format(WIDTH, height, title, title, body)


def _legend(names: list[str], colors: Sequence[str]) -> list[tuple[int, int, str, str]]:
    """(row offset, x, color, name) of each legend key, wrapped to the chart's width."""
    keys: list[tuple[int, int, str, str]] = []
    x, y = LEFT, 4
    for n, name in enumerate(names):
        width = 14 + CHAR_W * len(_shortened(name)) + 16
        if x + width > WIDTH and x > LEFT:
            x, y = LEFT, y + LEGEND_ROW
        keys.append((y, x, colors[n % len(colors)], name))
        x += width
    return keys


def _shortened(name: str, chars: int = LEGEND_CHARS) -> str:
    return name if len(name) <= chars else name[: chars - 1] + "…"


def _axes(labels: Sequence[str], top: float, fmt: Format) -> Markup:
    bottom = HEIGHT - BOTTOM
    axes = Markup(
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#dfe3ea"/>'
        '<line x1="{l}" y1="{t}" x2="{r}" y2="{t}" stroke="#eef1f6"/>'
        '<text x="{tx}" y="{ty}" text-anchor="end" font-size="11" fill="#5d6678">{top}</text>'
        '<text x="{tx}" y="{b}" text-anchor="end" font-size="11" fill="#5d6678">0</text>'
    ).format(l=LEFT, r=WIDTH - RIGHT, b=bottom, t=TOP, tx=LEFT - 6, ty=TOP + 4, top=fmt(top))
    every = max(1, -(-len(labels) // MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % every == 0:
            axes += Markup(
                '<text x="{:.1f}" y="{}" text-anchor="middle" font-size="11" '
                'fill="#5d6678">{}</text>'
            ).format(_x_center(i, len(labels)), bottom + 16, label)
    return axes


def _slot(count: int) -> float:
    return (WIDTH - LEFT - RIGHT) / max(count, 1)


def _x_center(i: int, count: int) -> float:
    return LEFT + _slot(count) * (i + 0.5)


def _y(value: float, top: float) -> float:
    return HEIGHT - BOTTOM - (HEIGHT - BOTTOM - TOP) * min(value, top) / top


def _runs(points: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """The unbroken stretches of a series (a line does not cross a gap)."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, value in enumerate(points):
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, value))
    return [run for run in runs if run]
