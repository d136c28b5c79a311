"""Do the registration's start dates agree with the first treated period in the data?

``registration.start_date`` (intended) and ``registration.actual_start_date`` are calendar dates;
the treatment start is a period of the data (a year, quarter, month or dated period). A pilot file
whose stated start falls in another period than the first treated one contradicts itself, and
the report would print both; :func:`registration_date_notes` says so in one sentence per date.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pilotlab.data.periods import parse_periods

__all__ = ["registration_date_notes"]

_DATE = re.compile(r"^\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\s*$")
_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]([1-4])\s*$")
#: Integer periods are read as calendar years only within this range (else they are wave numbers).
_YEARS = (1800, 2200)


def _day(text: str) -> date | None:
    """The first day a registration date stands for (``2024``, ``2024-04``, ``2024Q2`` too)."""
    m = _QUARTER.match(text)
    if m:
        return date(int(m.group(1)), 3 * int(m.group(2)) - 2, 1)
    m = _DATE.match(text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError:
        return None


def _period_label(day: date, fmt: str, labels: Sequence[str], keys: np.ndarray) -> str | None:
    """Label of the data period that contains ``day`` (written in the data's format)."""
    if fmt == "quarter":
        return f"{day.year}Q{(day.month - 1) // 3 + 1}"
    if fmt == "month":
        return f"{day.year}-{day.month:02d}"
    if fmt == "integer":
        if not all(_YEARS[0] <= int(k) <= _YEARS[1] for k in keys):
            return None  # wave numbers, not years: no calendar to compare with
        return str(day.year)
    # dated periods: the last period starting on or before the day
    pos = int(np.searchsorted(keys, np.datetime64(day, "D").astype(np.int64), side="right")) - 1
    return labels[pos] if pos >= 0 else f"before {labels[0]}"


def registration_date_notes(
    spec: Any, period_labels: Sequence[str], first_treated: str | None
) -> list[str]:
    """Sentences for registration dates that fall outside the first treated period.

    ``actual_start_date`` is checked when given (the intended ``start_date`` may then differ);
    otherwise ``start_date`` is. Dates that are not calendar dates, periods without a calendar
    (integer wave numbers) and pilots without a treated period are not checked.

    Parameters
    ----------
    spec
        The pilot (its ``registration`` and ``treatment`` are read).
    period_labels
        The data's periods, in order, as pilotlab labels them.
    first_treated
        Label of the first treated period (``None`` for a planned pilot).

    Returns
    -------
    list of str
        Empty when the dates agree.
    """
    reg = getattr(spec, "registration", None)
    if reg is None or first_treated is None or not period_labels:
        return []
    key, value = (
        ("actual_start_date", reg.actual_start_date)
        if reg.actual_start_date
        else ("start_date", reg.start_date)
    )
    if not value:
        return []
    day = _day(str(value))
    if day is None:
        return []
    index, _, bad = parse_periods(pd.Series(list(period_labels), dtype="string"))
    if bad.any():
        return []
    falls_in = _period_label(day, index.format, index.labels, index.keys)
    if falls_in is None or falls_in == first_treated:
        return []
    where = _treatment_key(spec)
    fix = (
        "correct the date or the treatment start so that they agree"
        if key == "actual_start_date"
        else "correct the date or the treatment start so that they agree; if the pilot "
        "started later than planned, give the actual start as registration.actual_start_date"
    )
    return [
        f"registration.{key}: {value} falls in {falls_in}, but the first treated period in the "
        f"data is {first_treated} ({where}); {fix}."
    ]


def _treatment_key(spec: Any) -> str:
    form = getattr(getattr(spec, "treatment", None), "form", "")
    return {
        "common": "treatment.start",
        "adoption": "the earliest date in treatment.adoption",
        "column": f"the earliest value of column '{getattr(spec.treatment, 'column', '')}'",
    }.get(form, "the treatment")
