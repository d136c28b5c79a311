"""Exact weighted two-way (unit and period) normal equations, solved without unit dummies.

With ``n_i`` the units' weight sums, ``n_t`` the periods' and ``N`` the units x periods matrix of
weight sums, the period effects solve the ``T x T`` Schur complement
``(diag(n_t) - N' diag(1/n_i) N) beta = b_t - N' (b_i / n_i)`` (the first observed period fixed
at 0) and the unit effects are ``alpha_i = (b_i - (N beta)_i) / n_i``: one Cholesky factor of a
``T x T`` matrix serves any number of right-hand sides, with no iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from pilotlab.exceptions import EstimationError

__all__ = ["TwoWay", "sums"]


@dataclass(frozen=True)
class TwoWay:
    """The weighted two-way normal equations of a set of observations, factorised once."""

    n_u: np.ndarray  # (N,) unit weight sums
    N: np.ndarray  # (N, T) unit x period weight sums
    keep_t: np.ndarray  # periods solved for (observed, less the reference)
    chol: tuple[np.ndarray, bool]

    @classmethod
    def build(
        cls,
        u: np.ndarray,
        t: np.ndarray,
        w: np.ndarray,
        n_units: int,
        n_periods: int,
        what: str = "the observations do not connect every period through common units, so "
        "the unit and period effects are not identified",
    ) -> TwoWay:
        """Factorise the normal equations of rows ``(u, t)`` with weights ``w``; ``what`` is
        the message when the periods are not connected (the system is singular)."""
        N = np.bincount(u * n_periods + t, weights=w, minlength=n_units * n_periods).reshape(
            n_units, n_periods
        )
        n_u = N.sum(axis=1)
        n_u = np.where(n_u > 0, n_u, 1.0)  # units outside these rows: rows of N are zero
        n_t = N.sum(axis=0)
        observed = np.flatnonzero(n_t > 0)
        keep_t = observed[1:]  # the first observed period is the reference (beta = 0)
        S = np.diag(n_t) - N.T @ (N / n_u[:, None])
        Sk = S[np.ix_(keep_t, keep_t)]
        try:
            chol = scipy.linalg.cho_factor(Sk, lower=True, check_finite=False)
            ok = (
                np.all(np.isfinite(chol[0]))
                and np.diag(chol[0]).min(initial=1.0)
                > 1e-9 * max(1.0, float(np.abs(np.diag(Sk)).max(initial=1.0))) ** 0.5
            )
        except np.linalg.LinAlgError:
            ok = False
        if not ok:
            raise EstimationError(what)
        return cls(n_u, N, keep_t, chol)

    def solve(self, b_u: np.ndarray, b_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(theta_u, theta_t)`` solving the normal equations for right-hand sides ``b``
        (``(N, K)`` and ``(T, K)``); the reference period's effect is 0."""
        scaled = b_u / self.n_u[:, None]
        rhs = b_t - self.N.T @ scaled
        theta_t = np.zeros_like(b_t)
        theta_t[self.keep_t] = scipy.linalg.cho_solve(
            self.chol, rhs[self.keep_t], check_finite=False
        )
        theta_u = scaled - (self.N @ theta_t) / self.n_u[:, None]
        return theta_u, theta_t


def sums(
    u: np.ndarray, t: np.ndarray, vals: np.ndarray, n_u: int, n_t: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit and per-period sums of each column of ``vals`` (rows x k)."""
    k = vals.shape[1]
    bu = np.empty((n_u, k))
    bt = np.empty((n_t, k))
    for j in range(k):  # a handful of columns
        bu[:, j] = np.bincount(u, weights=vals[:, j], minlength=n_u)
        bt[:, j] = np.bincount(t, weights=vals[:, j], minlength=n_t)
    return bu, bt
