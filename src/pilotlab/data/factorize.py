"""Codes of a column's distinct values, fast for the integer ids and periods most data hold."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["factorize"]


def factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray | pd.Index]:
    """Each row's code into the column's distinct values (``-1`` where missing) and those values.

    The order of the distinct values is unspecified (callers sort what they need). Integers
    within a range no wider than four times the number of rows are coded by their offset from
    the smallest, in two passes and without hashing; anything else goes through
    :func:`pandas.factorize`.
    """
    arr = values.to_numpy() if isinstance(values.dtype, np.dtype) else None
    if arr is not None and arr.dtype.kind in "iu" and arr.size:
        low, high = int(arr.min()), int(arr.max())
        if high - low < 4 * arr.size + 1024:
            offset = (arr - low).astype(np.intp, copy=False)
            present = np.zeros(high - low + 1, dtype=bool)
            present[offset] = True
            codes: np.ndarray
            if present.all():  # every value of the range occurs: the offsets are the codes
                codes = offset.astype(np.int64, copy=False)  # (a new array: ``arr - low``)
            else:
                rank = np.cumsum(present, dtype=np.intp) - 1
                codes = rank[offset].astype(np.int64, copy=False)
            distinct = (np.flatnonzero(present) + low).astype(arr.dtype)
            return codes, distinct
    raw_codes, distinct_values = pd.factorize(values)
    return np.asarray(raw_codes, dtype=np.int64), distinct_values
