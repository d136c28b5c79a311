"""``gather_codes`` is ``np.take(table, codes)`` on both of its paths, for every table kind."""

from __future__ import annotations

import numpy as np
import pytest

from pilotlab.data import _gather
from pilotlab.data._gather import HAS_NUMBA, gather_codes
from pilotlab.data.assignment import CodedRows
from pilotlab.data.panel import NEVER

TABLES = {
    "int8": np.array([3, -1, 0, 2, 127, -128], dtype=np.int8),
    "uint8": np.array([250, 0, 1, 7, 9, 255], dtype=np.uint8),
    "bool": np.array([True, False, False, True, True, False]),
    "int16": np.array([-300, 4, 0, 12, 8, 1], dtype=np.int16),
    "int64": np.array([-(2**62), 5, 0, 2**40, 3, 1], dtype=np.int64),
    "float": np.array([0.5, -1.25, np.nan, 3.0, -0.0, 1e300]),
}


@pytest.fixture(params=["numpy", "numba"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which path large inputs take: the compiled pass from the first code, or numpy's chunks
    (small ones, so that chunk edges fall inside rows)."""
    if request.param == "numba":
        if not HAS_NUMBA:
            pytest.skip("numba is not importable here")
        monkeypatch.setattr(_gather, "MIN_COMPILED_CODES", 0)
    else:
        monkeypatch.setattr(_gather, "HAS_NUMBA", False)
        monkeypatch.setattr(_gather, "CHUNK_CODES", 1000)
    return str(request.param)


@pytest.mark.parametrize("kind", sorted(TABLES))
@pytest.mark.parametrize("shape", [(0,), (0, 5), (1, 1), (7, 13), (999, 351), (3, 4, 5)])
def test_gather_is_take(path: str, kind: str, shape: tuple[int, ...]) -> None:
    table = TABLES[kind]
    rng = np.random.default_rng(sum(shape) + len(kind))
    for codes in (
        rng.integers(0, table.size, size=shape).astype(np.uint8),
        rng.integers(0, table.size, size=shape).astype(np.int64),
    ):
        got = gather_codes(table, codes)
        want = np.take(table, codes)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_non_contiguous_codes(path: str) -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 6, size=(40, 300)).astype(np.uint8)
    table = TABLES["int8"]
    for view in (codes[:, ::3], codes.T, codes[5:9, 100:250]):
        np.testing.assert_array_equal(gather_codes(table, view), np.take(table, view))


def test_a_code_beyond_the_table_is_refused_as_take_refuses_it(path: str) -> None:
    """The compiled pass reads the table unchecked, so codes past its end go to numpy, which
    raises rather than read memory beyond the table."""
    codes = np.zeros((4, 50), dtype=np.uint8)
    codes[2, 7] = 6
    with pytest.raises(IndexError):
        gather_codes(TABLES["int8"], codes)


def test_coded_rows_labels_and_maps_go_through_the_gather(path: str) -> None:
    rng = np.random.default_rng(5)
    values = np.array([2, 4, 9, NEVER], dtype=np.int64)
    codes = rng.integers(0, 4, size=(60, 500)).astype(np.uint8)
    rows = CodedRows(codes, values)
    np.testing.assert_array_equal(rows.labels(), values[codes])
    blocks = rows.map(lambda v: np.searchsorted([2, 4, 9], v) - 1)
    assert blocks.dtype == np.int8
    np.testing.assert_array_equal(blocks, np.array([-1, 0, 1, 2])[codes])
    ever = rows.ever_treated()
    assert ever.dtype == np.bool_
    np.testing.assert_array_equal(ever, codes != 3)
