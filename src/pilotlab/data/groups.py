"""The eligibility column of a triple difference (``data.group``): which rows of a unit are
eligible for the pilot (1) and which are not (0)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pilotlab.data.checks import ONE_WORDS, ZERO_WORDS, Problem, zero_one_cells

__all__ = ["group_codes"]


def group_codes(raw: pd.Series, column: str) -> tuple[np.ndarray, list[Problem]]:
    """``data.group`` as 0/1 floats, with the problems found: missing cells, values other than
    0/1 (true/false, yes/no), or a single value (no comparison within units)."""
    cells = zero_one_cells(raw, (*ONE_WORDS, "eligible"), (*ZERO_WORDS, "ineligible"))
    is_true, is_false = cells.one, cells.zero
    codes = np.where(is_true, 1.0, 0.0)
    problems: list[Problem] = []
    if cells.n_bad:
        problems.append(
            Problem(
                "data.group",
                f"data.group: column '{column}' has {cells.n_bad} cell(s) that are not 0 or 1 "
                f"(e.g. {cells.example} of the file); mark each row 1 if its people are "
                "eligible for the pilot and 0 if not",
                column,
            )
        )
    elif is_true.all() or is_false.all():
        only = "1 (eligible)" if is_true.all() else "0 (ineligible)"
        problems.append(
            Problem(
                "data.group",
                f"data.group: column '{column}' has one value only, {only}; a triple difference "
                "compares eligible (1) with ineligible (0) rows within each area, so the data "
                "need both (or remove data.group and use another estimator)",
                column,
            )
        )
    return codes, problems
