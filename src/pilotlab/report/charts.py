"""Charts as inline SVG, written by hand: no JavaScript, no plotting library, no network.

Each function returns the SVG text of one chart. Government chart practice is built in:

* the headline title and statistical subtitle are given by the caller and rendered as HTML
  around the chart (so they are real text), and repeated in the SVG ``<title>``/``<desc>``;
* lines carry direct labels at their right-hand end, no legend box far from the data;
* a colour-blind-safe palette (the Analysis Function categorical palette: dark blue, dark pink,
  turquoise, orange) that is never the only cue: each series also has its own marker shape and
  dash pattern, and pre-/post-period estimates differ in marker fill;
* horizontal axis labels, one vertical axis, a zero line where effects are shown.

All text put into the SVG is XML-escaped here, so hostile labels from a pilot file cannot inject
markup. Numbers shown in charts use the same formatters as the tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import escape

from pilotlab.report.format import fmt_num, is_number

__all__ = [
    "PALETTE",
    "Series",
    "bar_chart",
    "event_study_chart",
    "forest_plot",
    "line_chart",
    "nice_ticks",
    "placebo_chart",
    "unit_flow_diagram",
]

#: Analysis Function palette (colour-blind safe for the first four; all >= 4.5:1 on white
#: except turquoise, which is only used for marks that also have a distinct shape).
PALETTE = ("#12436D", "#801650", "#28A197", "#F46A25", "#3D3D3D")
TEXT = "#0b0c0c"
MUTED = "#505a5f"
GRID = "#d8dadc"
DASHES = ("", "6 4", "2 3", "8 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond")
FONT = 'font-family="Arial, Helvetica, sans-serif"'


@dataclass(frozen=True)
class Series:
    """One line of a line chart: name (the direct label), values (NaN = gap)."""

    name: str
    values: tuple[float, ...]


def _e(text: object) -> str:
    return str(escape(str(text)))


def _f(x: float) -> str:
    """Compact coordinate."""
    return f"{x:.1f}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    v = start
    while v <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _tick_decimals(ticks: Sequence[float]) -> int:
    """Fewest decimals that print every tick exactly (2.5 -> 1, 0.25 -> 2, 20 -> 0)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    for d in range(7):
        if abs(round(step, d) - step) < 1e-9 * max(1.0, step):
            return d
    return 6


def _open(fig_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" class="chart" '
        f'aria-labelledby="{fig_id}-svg-title {fig_id}-svg-desc" {FONT} font-size="13">',
        f'<title id="{fig_id}-svg-title">{_e(title)}</title>',
        f'<desc id="{fig_id}-svg-desc">{_e(desc)}</desc>',
    ]


def _marker(
    shape: str, x: float, y: float, colour: str, filled: bool = True, r: float = 3.5
) -> str:
    fill = colour if filled else "#ffffff"
    common = f'fill="{fill}" stroke="{colour}" stroke-width="1.5"'
    if shape == "square":
        return f'<rect x="{_f(x - r)}" y="{_f(y - r)}" width="{_f(2 * r)}" height="{_f(2 * r)}" {common}/>'
    if shape == "triangle":
        pts = f"{_f(x)},{_f(y - r - 1)} {_f(x - r - 0.5)},{_f(y + r)} {_f(x + r + 0.5)},{_f(y + r)}"
        return f'<polygon points="{pts}" {common}/>'
    if shape == "diamond":
        pts = f"{_f(x)},{_f(y - r - 1)} {_f(x + r + 1)},{_f(y)} {_f(x)},{_f(y + r + 1)} {_f(x - r - 1)},{_f(y)}"
        return f'<polygon points="{pts}" {common}/>'
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" {common}/>'


def _y_axis(
    parts: list[str],
    ticks: Sequence[float],
    sy: object,
    x0: float,
    x1: float,
    label: str,
    decimals: int,
) -> None:
    for t in ticks:
        y = sy(t)  # type: ignore[operator]
        parts.append(
            f'<line x1="{_f(x0)}" x2="{_f(x1)}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{_f(x0 - 6)}" y="{_f(y + 4)}" text-anchor="end" fill="{TEXT}">'
            f"{_e(fmt_num(t, decimals))}</text>"
        )
    if label:
        parts.append(f'<text x="{_f(x0)}" y="14" fill="{MUTED}">{_e(label)}</text>')


def _x_axis(
    parts: list[str],
    ticks: Sequence[float],
    sx: Callable[[float], float],
    top: int,
    base: float,
    *,
    zero_line: bool,
) -> None:
    """Vertical grid lines from ``top`` to ``base`` at the ``ticks`` of a horizontal value
    axis, their labels below, and (``zero_line``) a darker line at zero."""
    td = _tick_decimals(ticks)
    for t in ticks:
        parts.append(
            f'<line x1="{_f(sx(t))}" x2="{_f(sx(t))}" y1="{top}" y2="{_f(base)}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{_f(sx(t))}" y="{_f(base + 16)}" text-anchor="middle" fill="{TEXT}">'
            f"{_e(fmt_num(t, td))}</text>"
        )
    if zero_line:
        parts.append(
            f'<line x1="{_f(sx(0))}" x2="{_f(sx(0))}" y1="{top}" y2="{_f(base)}" stroke="{TEXT}"/>'
        )


def _x_labels(n: int, max_labels: int = 8) -> list[int]:
    if n <= max_labels:
        return list(range(n))
    step = math.ceil(n / max_labels)
    return list(range(0, n, step))


def line_chart(
    fig_id: str,
    title: str,
    desc: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    marker_at: int | None = None,
    marker_label: str = "",
    decimals: int = 1,
    width: int = 680,
    height: int = 340,
) -> str:
    """Lines over periods with direct labels and an optional vertical start marker.

    ``marker_at`` is the index of the first treated period; the line is drawn half a period
    before it, between the last period before and the first period of the pilot.
    """
    left, right, top, bottom = 58, 150, 26, 42
    n = len(x_labels)
    vals = [v for s in series for v in s.values if is_number(v)]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    ticks = nice_ticks(lo, hi)
    y0, y1 = ticks[0], ticks[-1]
    pw, ph = width - left - right, height - top - bottom

    def sx(i: float) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def sy(v: float) -> float:
        return top + ph * (1 - (v - y0) / ((y1 - y0) or 1))

    parts = _open(fig_id, title, desc, width, height)
    _y_axis(parts, ticks, sy, left, left + pw, y_label, _tick_decimals(ticks))
    base = top + ph
    parts.append(
        f'<line x1="{left}" x2="{_f(left + pw)}" y1="{_f(base)}" y2="{_f(base)}" stroke="{TEXT}"/>'
    )
    for i in _x_labels(n):
        parts.append(
            f'<text x="{_f(sx(i))}" y="{_f(base + 18)}" text-anchor="middle" fill="{TEXT}">'
            f"{_e(x_labels[i])}</text>"
        )
    if marker_at is not None and 0 < marker_at < n:
        xm = (sx(marker_at - 1) + sx(marker_at)) / 2
        parts.append(
            f'<line x1="{_f(xm)}" x2="{_f(xm)}" y1="{top}" y2="{_f(base)}" stroke="{TEXT}" '
            'stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{_f(xm + 4)}" y="{top + 12}" fill="{TEXT}">{_e(marker_label)}</text>'
        )
    ends: list[tuple[float, int, str]] = []
    every = max(1, math.ceil(n / 24))
    for k, s in enumerate(series):
        colour, dash, shape = PALETTE[k % 5], DASHES[k % 4], MARKERS[k % 4]
        segs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if is_number(v):
                segs[-1].append(f"{_f(sx(i))},{_f(sy(v))}")
            elif segs[-1]:
                segs.append([])
        for seg in segs:
            if len(seg) > 1:
                dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
                parts.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.5"{dash_attr}/>'
                )
        for i, v in enumerate(s.values):
            if is_number(v) and (i % every == 0 or i == n - 1):
                parts.append(_marker(shape, sx(i), sy(v), colour))
        last = [(i, v) for i, v in enumerate(s.values) if is_number(v)]
        if last:
            ends.append((sy(last[-1][1]), k, s.name))
    # direct labels at the right, nudged apart so they never overlap
    ends.sort()
    placed: list[float] = []
    for y, k, name in ends:
        y = max(y, placed[-1] + 16) if placed else y
        placed.append(y)
        parts.append(
            f'<text x="{_f(left + pw + 8)}" y="{_f(y + 4)}" fill="{PALETTE[k % 5]}" '
            f'font-weight="bold">{_e(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def event_study_chart(
    fig_id: str,
    title: str,
    desc: str,
    event_times: Sequence[int],
    estimates: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    *,
    band_lower: Sequence[float] | None = None,
    band_upper: Sequence[float] | None = None,
    y_label: str = "",
    decimals: int = 2,
    width: int = 680,
    height: int = 340,
    not_valid: str = "",
) -> str:
    """Estimates by period relative to the start with their intervals.

    Pre-period estimates are hollow circles, post-period ones filled squares, so the two are
    told apart without colour. A shaded band (``band_*``) shows a uniform confidence band.
    With ``not_valid`` (the reason, e.g. "cluster-robust interval, not valid with 1 treated
    cluster") the intervals are drawn grey and dashed (class ``ci-not-valid``) and the reason is
    written on the chart, so they cannot be read as valid intervals.
    """
    left, right, top, bottom = 58, 24, 26, 46
    if not_valid:
        bottom += 18
    n = len(event_times)
    vals = [v for v in (*lower, *upper, *estimates, 0.0) if is_number(v)]
    if band_lower is not None and band_upper is not None:
        vals += [v for v in (*band_lower, *band_upper) if is_number(v)]
    ticks = nice_ticks(min(vals), max(vals))
    y0, y1 = ticks[0], ticks[-1]
    pw, ph = width - left - right, height - top - bottom
    step = pw / max(n, 1)

    def sx(i: float) -> float:
        return left + step * (i + 0.5)

    def sy(v: float) -> float:
        return top + ph * (1 - (v - y0) / ((y1 - y0) or 1))

    parts = _open(fig_id, title, desc, width, height)
    _y_axis(parts, ticks, sy, left, left + pw, y_label, _tick_decimals(ticks))
    base = top + ph
    parts.append(
        f'<line x1="{left}" x2="{_f(left + pw)}" y1="{_f(sy(0))}" y2="{_f(sy(0))}" stroke="{TEXT}"/>'
    )
    first_post = next((i for i, e in enumerate(event_times) if e >= 0), None)
    if first_post is not None and first_post > 0:
        xm = sx(first_post - 0.5)
        parts.append(
            f'<line x1="{_f(xm)}" x2="{_f(xm)}" y1="{top}" y2="{_f(base)}" stroke="{MUTED}" '
            'stroke-dasharray="4 3"/>'
        )
        parts.append(f'<text x="{_f(xm + 4)}" y="{top + 12}" fill="{TEXT}">Pilot starts</text>')
        parts.append(
            f'<text x="{_f(xm - 4)}" y="{top + 12}" fill="{TEXT}" text-anchor="end">Before</text>'
        )
    label_every = max(1, math.ceil(n / 16))
    for i, e in enumerate(event_times):
        x = sx(i)
        if i % label_every == 0:
            parts.append(
                f'<text x="{_f(x)}" y="{_f(base + 18)}" text-anchor="middle" fill="{TEXT}">'
                f"{_e(fmt_num(e, 0) if e <= 0 else '+' + str(e))}</text>"
            )
        if band_lower is not None and band_upper is not None:
            bl, bu = band_lower[i], band_upper[i]
            if is_number(bl) and is_number(bu):
                parts.append(
                    f'<rect x="{_f(x - step * 0.3)}" y="{_f(sy(bu))}" width="{_f(step * 0.6)}" '
                    f'height="{_f(max(sy(bl) - sy(bu), 0.5))}" fill="#cfe0ee"/>'
                )
        lo_, hi_, est = lower[i], upper[i], estimates[i]
        post = e >= 0
        colour = PALETTE[0] if post else PALETTE[1]
        if is_number(lo_) and is_number(hi_):
            if not_valid:
                parts.append(
                    f'<line class="ci-not-valid" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(sy(lo_))}" '
                    f'y2="{_f(sy(hi_))}" stroke="{MUTED}" stroke-width="1.5" '
                    'stroke-dasharray="3 3"/>'
                )
            else:
                parts.append(
                    f'<line class="ci" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(sy(lo_))}" '
                    f'y2="{_f(sy(hi_))}" stroke="{colour}" stroke-width="2"/>'
                )
        if is_number(est):
            parts.append(
                _marker("square" if post else "circle", x, sy(est), colour, filled=post, r=4)
            )
    parts.append(
        f'<text x="{_f(left + pw / 2)}" y="{_f(height - 6)}" text-anchor="middle" fill="{MUTED}">'
        "Periods relative to the start (0 = first period of the pilot)</text>"
    )
    if not_valid:
        parts.append(
            f'<text class="ci-not-valid-label" x="{left}" y="{_f(height - 24)}" fill="{MUTED}">'
            f"Grey dashed lines: {_e(not_valid)} (too narrow)</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def forest_plot(
    fig_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    estimates: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    *,
    value_labels: Sequence[str] | None = None,
    x_label: str = "",
    decimals: int = 1,
    width: int = 680,
) -> str:
    """One row per item: point estimate, interval and a zero line; values printed at the right."""
    n = len(labels)
    left, right, top, bottom = 230, 150, 18, 44
    row_h = 34
    height = top + bottom + row_h * max(n, 1)
    vals = [v for v in (*lower, *upper, *estimates, 0.0) if is_number(v)]
    ticks = nice_ticks(min(vals), max(vals))
    x0, x1 = ticks[0], ticks[-1]
    pw = width - left - right

    def sx(v: float) -> float:
        return left + pw * (v - x0) / ((x1 - x0) or 1)

    parts = _open(fig_id, title, desc, width, height)
    base = top + row_h * n
    _x_axis(parts, ticks, sx, top, base, zero_line=True)
    for i in range(n):
        y = top + row_h * (i + 0.5)
        label = labels[i] if len(labels[i]) <= 34 else labels[i][:33] + "…"
        parts.append(f'<text x="8" y="{_f(y + 4)}" fill="{TEXT}">{_e(label)}</text>')
        lo_, hi_, est = lower[i], upper[i], estimates[i]
        if is_number(lo_) and is_number(hi_):
            parts.append(
                f'<line x1="{_f(sx(lo_))}" x2="{_f(sx(hi_))}" y1="{_f(y)}" y2="{_f(y)}" '
                f'stroke="{PALETTE[0]}" stroke-width="2"/>'
            )
            for xv in (lo_, hi_):
                parts.append(
                    f'<line x1="{_f(sx(xv))}" x2="{_f(sx(xv))}" y1="{_f(y - 5)}" y2="{_f(y + 5)}" '
                    f'stroke="{PALETTE[0]}" stroke-width="2"/>'
                )
        if is_number(est):
            parts.append(_marker("diamond", sx(est), y, PALETTE[0], r=5))
        if value_labels is not None:
            parts.append(
                f'<text x="{_f(left + pw + 10)}" y="{_f(y + 4)}" fill="{TEXT}">'
                f"{_e(value_labels[i])}</text>"
            )
    if x_label:
        parts.append(
            f'<text x="{_f(left + pw / 2)}" y="{_f(height - 6)}" text-anchor="middle" '
            f'fill="{MUTED}">{_e(x_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    fig_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    decimals: int = 3,
    width: int = 680,
) -> str:
    """Horizontal bars (e.g. donor weights), value printed at the end of each bar."""
    n = len(labels)
    left, right, top, bottom = 190, 70, 10, 16
    row_h = 24
    height = top + bottom + row_h * max(n, 1)
    vmax = max([abs(v) for v in values if is_number(v)] or [1.0]) or 1.0
    pw = width - left - right
    parts = _open(fig_id, title, desc, width, height)
    for i in range(n):
        y = top + row_h * i
        v = values[i] if is_number(values[i]) else 0.0
        w = pw * abs(v) / vmax
        parts.append(f'<text x="8" y="{_f(y + 16)}" fill="{TEXT}">{_e(labels[i][:28])}</text>')
        parts.append(
            f'<rect x="{left}" y="{_f(y + 4)}" width="{_f(max(w, 0.5))}" height="{row_h - 8}" '
            f'fill="{PALETTE[0]}"/>'
        )
        parts.append(
            f'<text x="{_f(left + w + 6)}" y="{_f(y + 16)}" fill="{TEXT}">'
            f"{_e(fmt_num(values[i], decimals))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def unit_flow_diagram(
    fig_id: str,
    title: str,
    desc: str,
    columns: Sequence[Sequence[tuple[str, str, str]]],
    *,
    side: tuple[int, tuple[str, str, str]] | None = None,
    width: int = 680,
) -> str:
    """A flow of boxes from left to right; each column holds one or more stacked stages.

    Each stage is (heading, count, note). Arrows join every box of one column to every box of the
    next (box to box when both columns have the same number), so a split (pilot / comparison)
    and a merge read naturally. ``side`` = (column, stage) hangs a box below that column with a
    downward arrow, for units leaving the flow (excluded, no data).
    """
    n = len(columns)
    gap = 22
    box_w = (width - 20 - gap * (n - 1)) / max(n, 1)
    box_h = 70
    vgap = 14
    tallest = max(len(c) for c in columns) if columns else 1
    main_h = 20 + tallest * box_h + (tallest - 1) * vgap
    height = int(main_h + (box_h + 30 if side else 0))
    parts = _open(fig_id, title, desc, width, height)
    parts.append(
        '<defs><marker id="' + fig_id + '-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{TEXT}"/></marker></defs>'
    )
    boxes: list[list[tuple[float, float]]] = []
    for c, col in enumerate(columns):
        x = 10 + c * (box_w + gap)
        col_h = len(col) * box_h + (len(col) - 1) * vgap
        y0 = (main_h - col_h) / 2
        placed = []
        for k, (head, count, note) in enumerate(col):
            y = y0 + k * (box_h + vgap)
            placed.append((x, y))
            parts.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(box_w)}" height="{box_h}" rx="3" '
                f'fill="#f3f2f1" stroke="{PALETTE[0]}" stroke-width="2"/>'
            )
            parts.append(
                f'<text x="{_f(x + 7)}" y="{_f(y + 18)}" fill="{TEXT}" font-weight="bold">'
                f"{_e(head)}</text>"
            )
            parts.append(
                f'<text x="{_f(x + 7)}" y="{_f(y + 42)}" fill="{TEXT}" font-size="20">{_e(count)}</text>'
            )
            parts.append(
                f'<text x="{_f(x + 7)}" y="{_f(y + 60)}" fill="{MUTED}" font-size="11">'
                f"{_e(note[:20])}</text>"
            )
        boxes.append(placed)
    if side is not None:
        c, (head, count, note) = side
        xs = 10 + c * (box_w + gap)
        ys = main_h + 20
        xa, ya = boxes[c][-1]
        parts.append(
            f'<rect x="{_f(xs)}" y="{_f(ys)}" width="{_f(box_w)}" height="{box_h}" rx="3" '
            f'fill="#ffffff" stroke="{MUTED}" stroke-width="2" stroke-dasharray="5 3"/>'
        )
        parts.append(
            f'<text x="{_f(xs + 7)}" y="{_f(ys + 18)}" fill="{TEXT}" font-weight="bold">{_e(head)}</text>'
        )
        parts.append(
            f'<text x="{_f(xs + 7)}" y="{_f(ys + 42)}" fill="{TEXT}" font-size="20">{_e(count)}</text>'
        )
        parts.append(
            f'<text x="{_f(xs + 7)}" y="{_f(ys + 60)}" fill="{MUTED}" font-size="11">{_e(note[:22])}</text>'
        )
        parts.append(
            f'<line x1="{_f(xa + box_w / 2)}" y1="{_f(ya + box_h)}" x2="{_f(xs + box_w / 2)}" '
            f'y2="{_f(ys - 2)}" stroke="{TEXT}" stroke-width="1.5" marker-end="url(#{fig_id}-arrow)"/>'
        )
    for c in range(1, len(boxes)):
        same = len(boxes[c - 1]) == len(boxes[c])
        for ka, (xa, ya) in enumerate(boxes[c - 1]):
            for kb, (xb, yb) in enumerate(boxes[c]):
                if same and ka != kb:
                    continue
                parts.append(
                    f'<line x1="{_f(xa + box_w)}" y1="{_f(ya + box_h / 2)}" x2="{_f(xb - 2)}" '
                    f'y2="{_f(yb + box_h / 2)}" stroke="{TEXT}" stroke-width="1.5" '
                    f'marker-end="url(#{fig_id}-arrow)"/>'
                )
    parts.append("</svg>")
    return "".join(parts)


def placebo_chart(
    fig_id: str,
    title: str,
    desc: str,
    placebo: Sequence[float],
    treated: float,
    treated_label: str,
    *,
    x_label: str = "",
    width: int = 680,
) -> str:
    """Placebo estimates as hollow circles on one axis; the real estimate a labelled diamond.

    Circles are spread over five rows (by rank, not at random) so that close values stay
    visible; the pilot's estimate differs by shape, fill and label, not only by colour.
    """
    left, right, top = 20, 20, 34
    rows = 5
    height = top + rows * 14 + 56
    vals = [v for v in (*placebo, treated, 0.0) if is_number(v)]
    ticks = nice_ticks(min(vals), max(vals))
    x0, x1 = ticks[0], ticks[-1]
    pw = width - left - right

    def sx(v: float) -> float:
        return left + pw * (v - x0) / ((x1 - x0) or 1)

    parts = _open(fig_id, title, desc, width, height)
    base = top + rows * 14 + 8
    _x_axis(parts, ticks, sx, top - 6, base, zero_line=False)
    order = sorted(range(len(placebo)), key=lambda i: placebo[i] if is_number(placebo[i]) else 0)
    for rank, i in enumerate(order):
        v = placebo[i]
        if is_number(v):
            parts.append(
                _marker("circle", sx(v), top + 7 + 14 * (rank % rows), PALETTE[1], False, 3.5)
            )
    if is_number(treated):
        y = top + rows * 7
        parts.append(_marker("diamond", sx(treated), y, PALETTE[0], True, 7))
        anchor = "end" if sx(treated) > left + pw / 2 else "start"
        dx = -12 if anchor == "end" else 12
        parts.append(
            f'<text x="{_f(sx(treated) + dx)}" y="{top - 12}" text-anchor="{anchor}" '
            f'fill="{PALETTE[0]}" font-weight="bold">{_e(treated_label)}</text>'
        )
    if x_label:
        parts.append(
            f'<text x="{_f(left + pw / 2)}" y="{_f(height - 6)}" text-anchor="middle" '
            f'fill="{MUTED}">{_e(x_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
