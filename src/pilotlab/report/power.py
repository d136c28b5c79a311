"""Render the power report (``power.html``): a self-contained page with inline SVG charts.

The geometry of the charts is computed here as plain data; ``templates/power.html.j2`` only lays
it out (jinja2 with autoescaping on). Nothing here reads data or runs simulations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2

from pilotlab.report._templates import template_dir
from pilotlab.report.format import NA, fmt_sig

if TYPE_CHECKING:
    from pilotlab.power.result import PowerResult

__all__ = ["render_power_html"]

W, H = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 24, 56
PALETTE = ("#1d70b8", "#d4351c", "#00703c", "#6f72af", "#f47738", "#28a197")


@dataclass(frozen=True)
class _Axis:
    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, v: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.start + (v - self.lo) / span * (self.end - self.start)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float | None, digits: int = 3) -> str:
    """Significant digits without exponents (11,864 not 1.19e+04), as everywhere else."""
    text = fmt_sig(v, digits)
    return "–" if text == NA else text


def _curve_chart(result: PowerResult) -> dict[str, Any]:
    effects = [p.effect for p in result.curve]
    xmax = max(effects) or 1.0
    x = _Axis(0.0, xmax, LEFT, W - RIGHT)
    y = _Axis(0.0, 1.0, H - BOTTOM, TOP)
    sim = " ".join(f"{x(p.effect):.1f},{y(p.power):.1f}" for p in result.curve)
    band_hi = [(x(p.effect), y(min(1.0, p.power + 1.96 * p.mc_error))) for p in result.curve]
    band_lo = [(x(p.effect), y(max(0.0, p.power - 1.96 * p.mc_error))) for p in result.curve]
    band = " ".join(f"{a:.1f},{b:.1f}" for a, b in band_hi + band_lo[::-1])
    analytic = (
        " ".join(f"{x(p.effect):.1f},{y(p.analytic_power or 0.0):.1f}" for p in result.curve)
        if all(p.analytic_power is not None for p in result.curve)
        else ""
    )
    return {
        "width": W,
        "height": H,
        "plot": {"x0": LEFT, "x1": W - RIGHT, "y0": TOP, "y1": H - BOTTOM},
        "xticks": [{"pos": x(t), "label": f"{t:g}"} for t in _ticks(0, xmax)],
        "yticks": [{"pos": y(t), "label": f"{t:.0%}"} for t in (0, 0.2, 0.4, 0.6, 0.8, 1.0)],
        "simulated": sim,
        "band": band,
        "analytic": analytic,
        "points": [{"x": x(p.effect), "y": y(p.power)} for p in result.curve],
        "target_y": y(result.target_power),
        "mde_x": x(result.mde) if result.mde is not None else None,
        "alpha_y": y(result.alpha),
    }


def _tradeoff_chart(result: PowerResult) -> dict[str, Any] | None:
    cells = [c for c in result.tradeoff if c.mde is not None]
    if not cells:
        return None
    ks = sorted({c.n_treated for c in result.tradeoff})
    ymax = max(c.mde for c in cells if c.mde is not None) * 1.1
    x = _Axis(min(ks), max(ks) if len(ks) > 1 else min(ks) + 1, LEFT, W - RIGHT - 130)
    y = _Axis(0.0, ymax, H - BOTTOM, TOP)
    series = []
    for i, L in enumerate(sorted({c.post_periods for c in result.tradeoff})):
        pts = [c for c in cells if c.post_periods == L]
        pts.sort(key=lambda c: c.n_treated)
        series.append(
            {
                "label": f"{L} periods after",
                "colour": PALETTE[i % len(PALETTE)],
                "path": " ".join(f"{x(c.n_treated):.1f},{y(c.mde or 0):.1f}" for c in pts),
                "points": [{"x": x(c.n_treated), "y": y(c.mde or 0)} for c in pts],
                "legend_y": TOP + 18 * i + 8,
            }
        )
    return {
        "width": W,
        "height": H,
        "plot": {"x0": LEFT, "x1": W - RIGHT - 130, "y0": TOP, "y1": H - BOTTOM},
        "xticks": [{"pos": x(k), "label": str(k)} for k in ks],
        "yticks": [{"pos": y(t), "label": f"{t:g}"} for t in _ticks(0, ymax)],
        "series": series,
        "legend_x": W - RIGHT - 120,
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        autoescape=jinja2.select_autoescape(["html", "j2", "html.j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt
    env.filters["pct"] = lambda v, d=1: "–" if v is None else f"{v * 100:.{d}f}%"
    return env


def render_power_html(result: PowerResult) -> str:
    """The power report as one self-contained HTML page."""
    template = _environment().get_template("power.html.j2")
    return template.render(
        r=result,
        curve=_curve_chart(result),
        tradeoff=_tradeoff_chart(result),
        direction="reduction" if result.better == "lower" else "increase",
    )
