"""Period parsing: integers (years), ISO dates, ``YYYY-MM`` months and ``YYYYQn`` quarters.

Each period becomes a sortable integer key; the distinct keys present in the data are mapped once
to the ordered index 0..T-1 that every estimator uses, and back to a normalised label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pilotlab.data.factorize import factorize

__all__ = ["PeriodFormat", "PeriodIndex", "detect_format", "parse_periods"]

PeriodFormat = Literal["integer", "quarter", "month", "date"]

_PATTERNS: dict[PeriodFormat, re.Pattern[str]] = {
    # At most 15 digits: longer numbers are not periods (and would overflow the sortable key).
    "integer": re.compile(r"^-?\d{1,15}$"),
    "quarter": re.compile(r"^(\d{4})\s*-?\s*[Qq]([1-4])$"),
    "month": re.compile(r"^(\d{4})-(\d{1,2})$"),
    "date": re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ]00:00(?::00)?)?$"),
}
_EXAMPLE = {"integer": "2024", "quarter": "2024Q2", "month": "2024-04", "date": "2024-04-01"}


def _keys(text: pd.Series, fmt: PeriodFormat) -> tuple[np.ndarray, np.ndarray]:
    """Integer keys of strings in format ``fmt`` and a mask of values that did not parse."""
    s = text.astype("string").str.strip()
    if fmt == "integer":
        ok = s.str.fullmatch(_PATTERNS["integer"].pattern).fillna(False).to_numpy(bool).copy()
        keys = np.zeros(len(s), dtype=np.int64)
        keys[ok] = s[ok].astype("int64").to_numpy()
        return keys, ~ok
    parts = s.str.extract(_PATTERNS[fmt])
    ok = parts.notna().all(axis=1).to_numpy(bool).copy()
    nums = parts.fillna("0").astype("int64").to_numpy()
    if fmt == "quarter":
        keys = nums[:, 0] * 4 + nums[:, 1] - 1
    elif fmt == "month":
        ok &= (nums[:, 1] >= 1) & (nums[:, 1] <= 12)
        keys = nums[:, 0] * 12 + nums[:, 1] - 1
    else:
        dates = pd.to_datetime(
            pd.DataFrame(
                {"year": nums[:, 0], "month": nums[:, 1].clip(1, 12), "day": nums[:, 2].clip(1, 31)}
            ),
            errors="coerce",
        )
        ok &= dates.notna().to_numpy()
        keys = np.where(ok, dates.to_numpy("datetime64[D]").astype(np.int64), 0)
    return keys.astype(np.int64), ~ok


def _label(key: int, fmt: PeriodFormat) -> str:
    if fmt == "integer":
        return str(key)
    if fmt == "quarter":
        return f"{key // 4}Q{key % 4 + 1}"
    if fmt == "month":
        return f"{key // 12}-{key % 12 + 1:02d}"
    return str(np.datetime64(int(key), "D"))


def detect_format(values: pd.Series) -> PeriodFormat | None:
    """The first format that every non-missing value matches, or ``None``."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if pd.api.types.is_integer_dtype(values):
        return "integer"
    if pd.api.types.is_float_dtype(values):
        v = values.dropna()
        return "integer" if bool(np.all((np.mod(v, 1) == 0) & (np.abs(v) < 1e15))) else None
    sample = values.dropna().astype(str).str.strip()
    for fmt, pat in _PATTERNS.items():
        if sample.str.fullmatch(pat.pattern).all():
            return fmt
    return None


@dataclass(frozen=True)
class PeriodIndex:
    """The ordered periods present in the data."""

    format: PeriodFormat
    keys: np.ndarray  # sorted distinct keys, position = period index
    labels: tuple[str, ...]

    @property
    def example(self) -> str:
        """An example of the format, for messages."""
        return _EXAMPLE[self.format]

    def index_of(self, value: object) -> int | None:
        """Period index of one user-written period (``None`` if malformed or absent)."""
        key = self.key_of(value)
        if key is None:
            return None
        pos = int(np.searchsorted(self.keys, key))
        return pos if pos < len(self.keys) and self.keys[pos] == key else None

    def key_of(self, value: object) -> int | None:
        """Sortable key of one user-written period (``None`` if it is not in this format)."""
        keys, bad = self.keys_of([value])
        return None if bad[0] else int(keys[0])

    def keys_of(self, values: list[object]) -> tuple[np.ndarray, np.ndarray]:
        """Sortable keys of user-written periods and a mask of those not in this format."""
        return _keys(pd.Series([_as_text(v) for v in values], dtype="string"), self.format)

    def position(self, key: int) -> int:
        """Index of the first period at or after ``key`` (``len`` if after the last)."""
        return int(np.searchsorted(self.keys, key))

    def has_gaps(self) -> bool:
        """Whether calendar periods are missing between the first and last (not for dates)."""
        if self.format == "date" or len(self.keys) < 2:
            return False
        return bool(np.any(np.diff(self.keys) > 1))


def _as_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def parse_periods(values: pd.Series) -> tuple[PeriodIndex, np.ndarray, np.ndarray]:
    """Parse a period column.

    Returns the :class:`PeriodIndex`, the period index of every row (``-1`` where malformed) and a
    boolean mask of malformed rows. The format is the one matched by most values, so that a few
    malformed entries are reported as such rather than making the whole column unreadable.
    """
    codes, uniques = factorize(values)  # parse each distinct value once
    if len(uniques) < len(values):
        index, idx_u, bad_u = parse_periods(pd.Series(uniques))
        if codes.size and int(codes.min()) >= 0:  # no missing period
            if not bad_u.any() and np.array_equal(idx_u, np.arange(len(idx_u))):
                # the distinct values came in period order (integer periods): codes are indices
                return index, codes, np.zeros(len(codes), dtype=bool)
            return index, idx_u[codes], bad_u[codes]
        seen = codes >= 0
        idx = np.full(len(codes), -1, dtype=np.int64)
        idx[seen] = idx_u[codes[seen]]
        bad = np.ones(len(codes), dtype=bool)
        bad[seen] = bad_u[codes[seen]]
        return index, idx, bad
    if pd.api.types.is_datetime64_any_dtype(values):
        text = values.dt.strftime("%Y-%m-%d")
        fmt: PeriodFormat = "date"
    elif pd.api.types.is_numeric_dtype(values):
        text = values.map(_as_text, na_action="ignore")
        fmt = "integer"
    else:
        text = values.astype("string")
        scores = {}
        for f, pat in _PATTERNS.items():
            scores[f] = int(text.str.strip().str.fullmatch(pat.pattern).fillna(False).sum())
        fmt = max(scores, key=lambda f: scores[f])
    keys, bad = _keys(pd.Series(text, dtype="string").fillna(""), fmt)
    distinct = np.unique(keys[~bad])
    idx = np.full(len(keys), -1, dtype=np.int64)
    idx[~bad] = np.searchsorted(distinct, keys[~bad])
    labels = tuple(_label(int(k), fmt) for k in distinct)
    return PeriodIndex(fmt, distinct, labels), idx, bad
