"""Event-time rows of an :class:`~pilotlab.results.EffectResult` read from an estimator's
table, shared by the estimators that keep their event-time effects as a data frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pilotlab.results import EventTimeEstimate

__all__ = ["event_rows"]


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
