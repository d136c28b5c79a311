"""CR2 cluster-robust variance with Bell-McCaffrey (Satterthwaite) degrees of freedom.

For least squares ``y = X b + e`` with ``M = (X'X)^-1`` and clusters ``g``, CR2 (Bell &
McCaffrey 2002) adjusts each cluster's residuals by ``A_g = (I - H_gg)^(-1/2)``, the symmetric
inverse square root of one minus the cluster's block of the hat matrix ``H = X M X'``:

    V = M (sum_g X_g' A_g e_g e_g' A_g X_g) M.

With one observation per cluster this is HC2. The degrees of freedom of a contrast ``c'b``
follow Bell & McCaffrey's Satterthwaite approximation under the working model ``e ~ (0, s^2 I)``
(as Imbens & Kolesar 2016 recommend and R's clubSandwich computes for ordinary least squares):
``V_c = sum_g (u_g' e_g)^2`` with ``u_g = A_g X_g M c`` is the quadratic form ``e' P P' e`` where
column ``g`` of ``P`` is ``(I - H) u_g`` placed on cluster ``g``'s rows, and

    dof = tr(P'P)^2 / tr((P'P)^2),   P'P = diag(|u_g|^2) - Q' M Q,   Q = X' U (k x G),

so nothing of size ``n x n`` or ``n x G`` is formed: the traces reduce to ``k x k`` products.
Clusters are handled in groups of equal size, each group one batched eigen-decomposition.
Weighted least squares is the same on ``sqrt(w) X`` and ``sqrt(w) y``.

References: Bell, R. M. & McCaffrey, D. F. (2002), Survey Methodology 28(2), 169-181;
Imbens, G. W. & Kolesar, M. (2016), Review of Economics and Statistics 98(4), 701-712;
Pustejovsky, J. E. & Tipton, E. (2018), Journal of Business & Economic Statistics 36(4), 672-683.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CR2", "cr2"]


@dataclass(frozen=True)
class CR2:
    """CR2 variance of the coefficients and Bell-McCaffrey degrees of freedom of contrasts.

    Attributes
    ----------
    vcov : numpy.ndarray
        ``(k, k)`` CR2 variance-covariance matrix.
    dof : numpy.ndarray
        ``(m,)`` degrees of freedom of each contrast asked for (rows of ``contrasts``).
    n_clusters : int
    """

    vcov: np.ndarray
    dof: np.ndarray
    n_clusters: int


def _adjustments(
    X: np.ndarray, M: np.ndarray, cluster: np.ndarray, n_clusters: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(rows, A)`` per group of equal-size clusters: ``rows`` ``(G_m, m)`` row indices and
    ``A`` ``(G_m, m, m)`` the symmetric (pseudo-)inverse square roots of ``I - H_gg``."""
    order = np.argsort(cluster, kind="stable")
    sizes = np.bincount(cluster, minlength=n_clusters)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    out = []
    for m in np.unique(sizes[sizes > 0]).tolist():  # one batch per distinct cluster size
        gs = np.flatnonzero(sizes == m)
        rows = order[starts[gs][:, None] + np.arange(m)[None, :]]  # (G_m, m)
        Xg = X[rows]  # (G_m, m, k)
        H = np.einsum("gik,kl,gjl->gij", Xg, M, Xg)
        B = np.eye(m)[None, :, :] - H
        B = 0.5 * (B + np.transpose(B, (0, 2, 1)))
        vals, vecs = np.linalg.eigh(B)
        tol = 1e-10 * max(1.0, float(np.abs(vals).max()) if vals.size else 1.0)
        inv_sqrt = np.where(vals > tol, 1.0 / np.sqrt(np.where(vals > tol, vals, 1.0)), 0.0)
        A = np.einsum("gij,gj,gkj->gik", vecs, inv_sqrt, vecs)
        out.append((rows, A))
    return out


def cr2(
    X: np.ndarray,
    resid: np.ndarray,
    cluster: np.ndarray,
    xtx_inv: np.ndarray,
    contrasts: np.ndarray | None = None,
) -> CR2:
    """CR2 variance of ``b`` and Bell-McCaffrey degrees of freedom for ``contrasts @ b``.

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, k)`` regressors (already multiplied by ``sqrt(weight)`` for weighted fits).
    resid : numpy.ndarray
        ``(n,)`` least-squares residuals (on the same scale as ``X``).
    cluster : numpy.ndarray
        ``(n,)`` integer cluster codes (any labels; renumbered here).
    xtx_inv : numpy.ndarray
        ``(k, k)`` ``(X'X)^-1``.
    contrasts : numpy.ndarray, optional
        ``(m, k)`` contrasts whose degrees of freedom are wanted (default: none).

    Returns
    -------
    CR2
    """
    X = np.asarray(X, dtype=np.float64)
    e = np.asarray(resid, dtype=np.float64)
    M = np.asarray(xtx_inv, dtype=np.float64)
    _, codes = np.unique(np.asarray(cluster), return_inverse=True)
    codes = codes.astype(np.int64)
    G = int(codes.max()) + 1 if codes.size else 0
    n, k = X.shape
    groups = _adjustments(X, M, codes, G)
    meat = np.zeros((k, k))
    for rows, A in groups:  # a few cluster sizes
        ae = np.einsum("gij,gj->gi", A, e[rows])
        s = np.einsum("gik,gi->gk", X[rows], ae)  # (G_m, k) adjusted scores
        meat += s.T @ s
    vcov = M @ meat @ M
    vcov = 0.5 * (vcov + vcov.T)
    C = np.zeros((0, k)) if contrasts is None else np.atleast_2d(np.asarray(contrasts, float))
    dof = np.empty(C.shape[0])
    for j, c in enumerate(C):  # a few contrasts
        v = X @ (M @ c)  # (n,)
        u = np.empty(n)
        for rows, A in groups:
            u[rows] = np.einsum("gij,gj->gi", A, v[rows])
        d = np.bincount(codes, weights=u * u, minlength=G)  # |u_g|^2
        Q = np.empty((k, G))
        for col in range(k):  # k columns, each one bincount over rows
            Q[col] = np.bincount(codes, weights=X[:, col] * u, minlength=G)
        MQ = M @ Q  # (k, G)
        qmq = np.einsum("kg,kg->g", Q, MQ)  # diagonal of Q'MQ
        S = Q @ Q.T
        tr1 = float(d.sum() - qmq.sum())
        MS = M @ S
        qdq = (Q * d[None, :]) @ Q.T
        tr2 = float((d * d).sum() - 2.0 * np.trace(M @ qdq) + np.trace(MS @ MS))
        dof[j] = tr1 * tr1 / tr2 if tr2 > 0 else np.nan
    return CR2(vcov, dof, G)
