"""Scrambled Sobol points: Joe and Kuo's direction numbers, Matousek's linear matrix scramble
and a random digital shift, generated as whole arrays.

:func:`scrambled_sobol` gives bit for bit the points of ``scipy.stats.qmc.Sobol(dim,
scramble=True, rng=rng).random(n)`` of scipy 1.17 (30 bits; ``tests/diagnostics/test_sobol.py``
checks), without importing :mod:`scipy.stats`, which takes most of a second of every
``pilotlab run`` that tests pre-trends; and they stay the same whichever scipy is installed.
The direction numbers (the D(6) numbers of Joe and Kuo 2008, up to 21,201 dimensions) are read
from the data file scipy ships with ``qmc``; if it is not where scipy keeps it, ``qmc.Sobol``
itself is used.

Point ``i`` is the shift XOR-ed with the scrambled direction numbers of the bits set in the Gray
code of ``i`` (the order ``qmc.Sobol`` draws them in), divided by ``2**30``; each doubling of
the points is the earlier half in reverse order XOR-ed with one direction number.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import cast

import numpy as np

__all__ = ["scrambled_sobol"]

#: Bits of each coordinate (``qmc.Sobol``'s default).
BITS = 30
_DATA = ("stats", "_sobol_direction_numbers.npz")


@functools.cache
def _direction_data() -> tuple[np.ndarray, np.ndarray] | None:
    """The primitive polynomials and initial direction numbers (``poly``, ``vinit``), or None."""
    spec = importlib.util.find_spec("scipy")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root).joinpath(*_DATA)
        if path.is_file():
            with np.load(path) as data:
                return data["poly"].astype(np.int64), data["vinit"].astype(np.int64)
    return None


@functools.lru_cache(maxsize=64)
def _unscrambled(dim: int) -> np.ndarray | None:
    """:func:`_direction_numbers` of the first ``dim`` dimensions, or None without the data."""
    data = _direction_data()
    if data is None or dim > data[0].size:  # pragma: no cover - a scipy without the data file
        return None
    out = _direction_numbers(*data, dim)
    out.setflags(write=False)
    return out


def _direction_numbers(poly: np.ndarray, vinit: np.ndarray, dim: int) -> np.ndarray:
    """``(dim, BITS)`` direction numbers, column ``j`` scaled by ``2**(BITS - 1 - j)``.

    Dimension 0 has every number 1. Dimension ``d`` takes its first ``m`` numbers (``m`` the
    degree of its primitive polynomial, coefficients ``a_1 .. a_{m-1}``) from ``vinit`` and the
    rest from Bratley and Fox's recurrence ``v_j = v_{j-m} XOR 2^m v_{j-m} XOR`` the XOR over
    ``0 < k < m`` of ``a_k 2^k v_{j-k}`` (Bratley and Fox 1988, section 2), all dimensions at
    once.
    """
    p = poly[:dim]
    deg = np.zeros(dim, dtype=np.int64)  # the bit length of p, less one
    rest = p >> 1
    while rest.any():
        deg += rest > 0
        rest = rest >> 1
    v = np.zeros((dim, BITS), dtype=np.int64)
    width = vinit.shape[1]
    v[:, :width] = np.where(np.arange(width) < deg[:, None], vinit[:dim], 0)
    v[0] = 1
    later = np.arange(dim) > 0
    for j in range(BITS):
        rec = later & (j >= deg)
        if not rec.any():
            continue
        new = v[np.arange(dim), np.where(rec, j - deg, 0)]
        for k in range(min(int(deg.max()), j)):  # the term 2^(k+1) v_{j-k-1}, where used
            used = rec & (k < deg) & ((p >> np.maximum(deg - 1 - k, 0)) & 1 == 1)
            new ^= np.where(used, v[:, j - k - 1] << (k + 1), 0)
        v[:, j] = np.where(rec, new, v[:, j])
    return v << (BITS - 1 - np.arange(BITS))


def _scramble(sv: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The digital shift and the direction numbers under a random lower-triangular binary
    matrix with unit diagonal (drawn in that order, as ``qmc.Sobol`` draws them)."""
    dim = sv.shape[0]
    shift_bits = rng.integers(2, size=(dim, BITS), dtype=np.uint32).astype(np.int64)
    shift = shift_bits @ (np.int64(1) << np.arange(BITS))
    ltm = np.tril(rng.integers(2, size=(dim, BITS, BITS), dtype=np.uint32)).astype(np.int64)
    ltm[:, np.arange(BITS), np.arange(BITS)] = 1
    msb = BITS - 1 - np.arange(BITS)  # bit k of a number, counted from its most significant
    bits = (sv[:, :, None] >> msb) & 1  # (dim, direction j, bit k)
    scrambled = np.einsum("dpk,djk->djp", ltm, bits) & 1
    return shift, (scrambled << msb).sum(axis=2)


def scrambled_sobol(dim: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``n`` points (``(n, dim)``, in ``[0, 1)``) of a Sobol sequence scrambled with
    random numbers from a child of ``rng``'s seed sequence, as ``qmc.Sobol(dim, rng=rng)``
    (which spawns that child and leaves ``rng`` itself where it was)."""
    if not 1 <= n <= 2**BITS or dim < 1:
        raise ValueError(f"need 1 <= n <= 2**{BITS} points and dim >= 1, got n={n}, dim={dim}")
    unscrambled = _unscrambled(dim)
    if unscrambled is None:  # pragma: no cover - a scipy without the data file
        from scipy.stats import qmc

        points: np.ndarray = qmc.Sobol(dim, scramble=True, rng=rng).random(n)
        return points
    bg = rng.bit_generator
    seeds = cast(np.random.SeedSequence, bg.seed_seq)  # what every numpy bit generator holds
    child = np.random.Generator(type(bg)(seeds.spawn(1)[0]))
    shift, sv = _scramble(unscrambled, child)
    # Gray codes of 2^b .. 2^(b+1) - 1 are those below 2^b in reverse order, with bit b set
    levels = int(n - 1).bit_length()
    quasi = np.empty((1 << levels, dim), dtype=np.int64)
    quasi[0] = shift
    for b in range(levels):
        half = 1 << b
        np.bitwise_xor(
            quasi[half - 1 :: -1] if b else quasi[:1], sv[:, b], out=quasi[half : 2 * half]
        )
    out: np.ndarray = quasi[:n] * (1.0 / 2**BITS)
    return out
