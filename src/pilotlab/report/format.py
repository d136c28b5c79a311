"""Number formatters shared by the generated text, the tables and the templates.

Every number the reader sees goes through one of these functions, so a value quoted in a sentence
is character for character the value in the table beside it. They are registered as Jinja filters
(:data:`FILTERS`) so an organisation's own templates format numbers the same way.

Conventions (GOV.UK style): a true minus sign (U+2212), thousands separated by commas, no
trailing ``.0`` on counts, "<0.001" for tiny p-values, "not available" for missing numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "FILTERS",
    "MINUS",
    "NA",
    "decimals_for",
    "decimals_for_scale",
    "fmt_ci",
    "fmt_int",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "fmt_sig",
    "fmt_signed",
    "is_number",
]

MINUS = "\u2212"
NA = "not available"


def is_number(x: Any) -> bool:
    """True for a finite int/float (bools excluded)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(float(x))


def decimals_for(spread: float | None, default: int = 2) -> int:
    """Decimal places that show ``spread`` (e.g. a CI half-width) to two significant digits.

    Parameters
    ----------
    spread
        A positive scale of the uncertainty; ``None``/NaN/0 gives ``default``.
    default
        Decimals when no scale is known.

    Returns
    -------
    int
        Between 0 and 6.
    """
    if spread is None or not is_number(spread) or spread <= 0:
        return default
    return max(0, min(6, 1 - math.floor(math.log10(float(spread)))))


def decimals_for_scale(
    typical: float | None,
    se: float | None = None,
    *,
    se_digits: int = 2,
    typical_digits: int = 3,
) -> int:
    """Decimals for an outcome's effects, from its typical magnitude and the estimate's SE.

    The rule every number of an outcome follows (report, CLI, portfolio):

    * with a usable standard error (finite, > 0), show it to ``se_digits`` significant digits
      (SE 0.12 -> 2 decimals, SE 0.004 -> 4 decimals, SE 35 -> 0 decimals);
    * without one (an unavailable or infinite interval, a zero SE), show the outcome's typical
      magnitude to ``typical_digits`` significant digits (0.27 -> 3 decimals, 11,864 -> 0);
    * never more decimals than the typical magnitude to ``typical_digits + 1`` significant
      digits (so a tiny SE on a large outcome does not print "11,863.903252"), never fewer
      than 0 and never more than 6.

    Parameters
    ----------
    typical
        A typical absolute value of the outcome (e.g. its pre-pilot mean); ``None``/NaN/0 when
        unknown.
    se
        The standard error of the estimate (or a half-width of its interval).

    Returns
    -------
    int
        Between 0 and 6.
    """
    mag = None
    if typical is not None and is_number(typical) and float(typical) != 0:
        mag = math.floor(math.log10(abs(float(typical))))
    if se is not None and is_number(se) and float(se) > 0:
        d = se_digits - 1 - math.floor(math.log10(float(se)))
    elif mag is not None:
        d = typical_digits - 1 - mag
    else:
        d = 2
    if mag is not None:
        d = min(d, typical_digits - mag)
    return max(0, min(6, d))


def fmt_sig(x: Any, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits (no exponent, thousands separated; NA if missing).

    For numbers with no outcome scale to hand (a power result, a CLI summary line): 0.004217 ->
    "0.00422", 11863.9 -> "11,864", -0.5103 -> "−0.510".
    """
    if not is_number(x):
        return NA
    v = float(x)
    if v == 0:
        return "0"
    d = max(0, min(8, digits - 1 - math.floor(math.log10(abs(v)))))
    return fmt_num(v, d)


def fmt_num(x: Any, decimals: int = 2) -> str:
    """Fixed decimals with thousands separators and a true minus sign; NA for missing."""
    if not is_number(x):
        return NA
    v = round(float(x), decimals)
    if v == 0:
        v = 0.0  # no "-0.00"
    text = f"{abs(v):,.{decimals}f}"
    return f"{MINUS}{text}" if v < 0 else text


def fmt_signed(x: Any, decimals: int = 2) -> str:
    """Like :func:`fmt_num` with an explicit ``+`` on positive values."""
    text = fmt_num(x, decimals)
    if text == NA or text.startswith(MINUS) or float(x) == 0 or fmt_num(0, decimals) == text:
        return text
    return f"+{text}"


def fmt_int(x: Any) -> str:
    """Whole number with thousands separators."""
    if not is_number(x):
        return NA
    return f"{round(float(x)):,}"


def fmt_pct(x: Any, decimals: int = 1, signed: bool = False) -> str:
    """A share (0.102) as a percentage ("10.2%")."""
    if not is_number(x):
        return NA
    text = (fmt_signed if signed else fmt_num)(100 * float(x), decimals)
    return f"{text}%"


def fmt_p(x: Any) -> str:
    """A p-value: three decimals, "<0.001" below that, NA when missing."""
    if not is_number(x):
        return NA
    v = float(x)
    if v < 0.001:
        return "<0.001"
    return f"{v:.3f}"


def fmt_ci(lo: Any, hi: Any, decimals: int = 2) -> str:
    """An interval as "lo to hi" (words, not a dash that could read as a minus)."""
    if not (is_number(lo) and is_number(hi)):
        return NA
    return f"{fmt_num(lo, decimals)} to {fmt_num(hi, decimals)}"


#: Jinja filters registered by :func:`pilotlab.report.render.environment`.
FILTERS: dict[str, Callable[..., str]] = {
    "num": fmt_num,
    "signed": fmt_signed,
    "count": fmt_int,
    "pct": fmt_pct,
    "pvalue": fmt_p,
    "ci": fmt_ci,
    "sig": fmt_sig,
}
