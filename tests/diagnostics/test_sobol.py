"""pilotlab's scrambled Sobol points: the same bits as scipy.stats.qmc.Sobol, and the balance
that makes them quasi-random whatever the library."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
from scipy.stats import qmc

from pilotlab.diagnostics import mvn_box
from pilotlab.diagnostics.sobol import BITS, scrambled_sobol


@pytest.mark.parametrize("dim", [1, 2, 3, 7, 8, 19, 40, 250])
@pytest.mark.parametrize("n", [1, 2, 5, 1024, 3000])
def test_points_equal_qmc_sobol_bit_for_bit(dim: int, n: int) -> None:
    ours, theirs = np.random.default_rng([7, dim, n]), np.random.default_rng([7, dim, n])
    for _ in range(3):  # consecutive scramblings from one generator, as mvn_box draws them
        with pytest.warns(UserWarning) if n & (n - 1) else nullcontext():
            expected = qmc.Sobol(dim, scramble=True, rng=theirs).random(n)
        got = scrambled_sobol(dim, n, ours)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    # neither generator's own stream moved: each scrambling comes from a spawned child
    assert ours.bit_generator.state == theirs.bit_generator.state
    assert ours.random() == np.random.default_rng([7, dim, n]).random()


@pytest.mark.parametrize("dim", [1, 5, 12])
def test_each_coordinate_has_one_point_in_each_slice(dim: int) -> None:
    """A (0, m, 1)-net in every coordinate: 2^m points, one in each [k, k+1) / 2^m."""
    for m in (4, 10, 13):
        pts = scrambled_sobol(dim, 2**m, np.random.default_rng(m))
        assert pts.min() >= 0.0 and pts.max() < 1.0
        slices = np.sort(np.floor(pts * 2**m).astype(np.int64), axis=0)
        np.testing.assert_array_equal(slices, np.arange(2**m)[:, None].repeat(dim, axis=1))
        # every coordinate is a multiple of 2**-BITS
        np.testing.assert_array_equal(pts * 2**BITS, np.floor(pts * 2**BITS))


def test_two_dimensional_elementary_intervals_are_balanced() -> None:
    """Sobol's first two coordinates form a (0, m, 2)-net: each 2^-a x 2^-(m-a) box holds one."""
    m = 8
    pts = scrambled_sobol(2, 2**m, np.random.default_rng(3))
    for a in range(m + 1):
        cells = np.floor(pts[:, 0] * 2**a) * 2 ** (m - a) + np.floor(pts[:, 1] * 2 ** (m - a))
        assert np.unique(cells).size == 2**m


def test_box_probability_points_are_the_ones_qmc_gives() -> None:
    rng = np.random.default_rng([mvn_box._SEED, 4, 1024])
    expected = np.concatenate(
        [qmc.Sobol(4, scramble=True, rng=rng).random(1024) for _ in range(mvn_box.SHIFTS)]
    )
    mvn_box._points.cache_clear()
    np.testing.assert_array_equal(mvn_box._points(4, 1024), expected)


@pytest.mark.parametrize(("dim", "n"), [(0, 4), (3, 0), (2, 2**BITS + 1)])
def test_impossible_requests_are_refused(dim: int, n: int) -> None:
    with pytest.raises(ValueError, match="points and dim"):
        scrambled_sobol(dim, n, np.random.default_rng(0))


def test_every_dimension_of_the_direction_numbers_equals_qmc_sobol() -> None:
    """All 21,201 dimensions at once: every primitive polynomial, of degree up to 18."""
    dim = qmc.Sobol.MAXDIM
    expected = qmc.Sobol(dim, scramble=True, rng=np.random.default_rng(5)).random(4)
    np.testing.assert_array_equal(scrambled_sobol(dim, 4, np.random.default_rng(5)), expected)
