"""The ``auto`` inference rule: pick a method that is valid for the number of (treated) clusters.

Thresholds and the evidence behind them:

* **Cluster-robust (CR1) standard errors** need many clusters *and* many treated clusters.
  With few treated clusters the CR variance is badly biased down whatever the total number of
  clusters (MacKinnon & Webb 2017, J. Applied Econometrics 32, "Wild bootstrap inference for
  wildly different cluster sizes"; 2018, Econometrics Journal 21, "The wild bootstrap for few
  (treated) clusters"; Conley & Taber 2011, REStat). Rules of thumb in that literature put the
  total at 40-50 clusters or more (Cameron & Miller 2015, J. Human Resources; Angrist & Pischke's
  "42"). pilotlab asks for at least :data:`CLUSTER_MIN_CLUSTERS` = 50 clusters with at least
  :data:`CLUSTER_MIN_TREATED` = 20 treated and 20 untreated clusters.
* **Wild cluster restricted bootstrap** (Roodman et al. 2019) stays close to its nominal level
  with few clusters and moderately few treated clusters, but with very few treated clusters
  (1-4) it becomes very conservative or unreliable (MacKinnon & Webb 2017, 2018: WCR
  under-rejects severely with one treated cluster and improves quickly from about five).
  pilotlab uses it for linear estimators with at least :data:`WILD_MIN_TREATED` = 5 treated
  clusters (and untreated ones).
* **Randomisation inference** (permuting the assignment across units) is exact by design under
  the sharp null whatever the number of treated units (Fisher; MacKinnon & Webb 2020, J.
  Econometrics 218, "Randomization inference for difference-in-differences with few treated
  clusters"), so it is the choice below those thresholds, and for non-linear estimators with
  few treated clusters. Its smallest attainable p-value is one over the number of possible
  assignments, which the reason sentence states when it limits what can be concluded.
* **Synthetic designs** (synthetic control, synthetic DiD) use placebo-in-space inference
  (Abadie, Diamond & Hainmueller 2010; Arkhangelsky et al. 2021).
"""

from __future__ import annotations

import math

from pilotlab.catalogue import Capabilities
from pilotlab.catalogue import get as get_estimator

__all__ = [
    "CLUSTER_MIN_CLUSTERS",
    "CLUSTER_MIN_TREATED",
    "WILD_MIN_TREATED",
    "choose_inference",
]

CLUSTER_MIN_CLUSTERS = 50
CLUSTER_MIN_TREATED = 20
WILD_MIN_TREATED = 5


def choose_inference(
    n_clusters: int,
    n_treated_clusters: int,
    n_treated_units: int,
    estimator: str | Capabilities,
    *,
    n_units: int | None = None,
    alpha: float = 0.05,
) -> tuple[str, str]:
    """Choose the inference method for ``design.inference.method: auto``.

    Parameters
    ----------
    n_clusters : int
        Number of clusters.
    n_treated_clusters : int
        Clusters containing at least one treated unit.
    n_treated_units : int
        Treated units.
    estimator : str or Capabilities
        A registered estimator's name or capabilities (synthetic designs use placebo
        inference; estimators with linear parts can use the wild bootstrap).
    n_units : int, optional
        Total units; lets the reason state the smallest attainable permutation p-value.
    alpha : float, default 0.05

    Returns
    -------
    method : {"cluster", "wild_bootstrap", "permutation", "placebo"}
    reason : str
        One sentence for the report saying what was chosen and why.
    """
    caps = get_estimator(estimator).capabilities if isinstance(estimator, str) else estimator
    g, g1 = int(n_clusters), int(n_treated_clusters)
    g0 = g - g1
    where = (
        f"{n_treated_units} treated unit{'s' if n_treated_units != 1 else ''} in {g1} of {g} "
        "clusters"
    )
    if caps.synthetic:
        return "placebo", (
            f"{where}: a synthetic design, so uncertainty comes from placebo runs that assign "
            "the treatment to each comparison unit in turn (placebo-in-space)."
        )
    if g >= CLUSTER_MIN_CLUSTERS and min(g1, g0) >= CLUSTER_MIN_TREATED:
        return "cluster", (
            f"{where}: enough clusters ({CLUSTER_MIN_CLUSTERS}+) and enough treated and "
            f"untreated clusters ({CLUSTER_MIN_TREATED}+ each) for cluster-robust standard "
            "errors."
        )
    few = (
        f"too few clusters for cluster-robust standard errors, which need about "
        f"{CLUSTER_MIN_CLUSTERS} clusters with {CLUSTER_MIN_TREATED}+ treated and untreated "
        "(MacKinnon & Webb 2018)"
    )
    if caps.linear and min(g1, g0) >= WILD_MIN_TREATED:
        return "wild_bootstrap", (
            f"{where}: {few}, so p-values and intervals come from the wild cluster restricted "
            "bootstrap (Roodman et al. 2019), reliable from about "
            f"{WILD_MIN_TREATED} treated clusters."
        )
    floor = ""
    if n_units is not None and 0 < n_treated_units < n_units:
        n_assign = math.comb(int(n_units), int(n_treated_units))
        if n_assign < 1 / alpha * 20:
            floor = (
                f" With {n_assign:,} possible assignments the smallest attainable p-value is "
                f"{1 / n_assign:.3g}."
            )
    why = (
        f"even the wild bootstrap is unreliable with fewer than {WILD_MIN_TREATED} treated clusters"
        if caps.linear
        else "the estimator has no wild bootstrap"
    )
    return "permutation", (
        f"{where}: {few} and {why}, so inference permutes the treatment assignment across "
        f"units (randomisation inference, exact under the sharp null).{floor}"
    )
