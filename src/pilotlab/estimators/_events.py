"""Tables of estimands tagged by kind and label (event time, cohort, period) and the
:class:`~pilotlab.results.EffectResult` event-time rows read back from them, shared by the
estimators that keep their effects as data frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from pilotlab.results import EventTimeEstimate

__all__ = ["INTERVAL_COLUMNS", "estimand_table", "event_rows", "kind_table"]


def event_rows(frame: pd.DataFrame) -> list[EventTimeEstimate]:
    """Event-time rows of a table with ``event_time``, ``estimate``, ``std_error``,
    ``ci_lower``, ``ci_upper`` and ``p_value`` columns."""
    e = frame["event_time"].to_numpy(np.int64)
    v = [
        frame[c].to_numpy(np.float64)
        for c in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value")
    ]
    return [
        EventTimeEstimate(
            int(e[i]),
            float(v[0][i]),
            float(v[1][i]),
            float(v[2][i]),
            float(v[3][i]),
            float(v[4][i]),
        )
        for i in range(e.size)
    ]


INTERVAL_COLUMNS = ("estimate", "std_error", "ci_lower", "ci_upper", "p_value")


def estimand_table(
    inference: Sequence[np.ndarray], rows: np.ndarray, key: str, values: Sequence[object]
) -> pd.DataFrame:
    """A table of the estimands at ``rows``: a ``key`` column of ``values``, then the
    :data:`INTERVAL_COLUMNS` read from ``inference`` (one array each, in that order)."""
    table: dict[str, object] = {key: values}
    table.update({c: v[rows] for c, v in zip(INTERVAL_COLUMNS, inference, strict=True)})
    return pd.DataFrame(table)


def kind_table(
    inference: Sequence[np.ndarray],
    kinds: np.ndarray,
    labels: np.ndarray,
    kind: str,
    key: str,
    label: Callable[[int], object],
) -> pd.DataFrame:
    """The estimands of one ``kind`` (``dynamic``, ``group``, ...), keyed by their labels."""
    m = np.flatnonzero(kinds == kind)
    return estimand_table(inference, m, key, [label(int(labels[i])) for i in m])
