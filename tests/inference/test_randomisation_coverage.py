"""Monte Carlo: CR2 / Bell-McCaffrey and randomisation intervals cover a known effect ~95%.

Each pilot is generated with a constant effect ``TRUE`` on the treated units after the start,
allocated by its scheme from its own seed. The fast versions run by default; the long ones are
marked slow (``pytest -m slow``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pilotlab.estimators import EstimatorOptions, get_estimator
from pilotlab.inference.apply import apply_inference
from pilotlab.power.curve import binomial_interval
from tests.support.trial import trial_frame, trial_panel

TRUE = 0.6
ENTRY = get_estimator("randomised")
SCHEMES = {
    "complete": {"scheme": "complete", "treated": 12},
    "stratified": {"scheme": "stratified", "strata": ["region"], "treated": 12},
    "pairs": {"scheme": "pairs", "treated": None, "pairs_on": ["outcome"]},
    "rerandomise": {"scheme": "rerandomise", "treated": 12,
                    "balance": {"on": ["outcome"], "max_std_diff": 0.25}},
}  # fmt: skip


def _coverage(scheme: str, seeds: range, n_units: int, reps: int) -> tuple[float, float, int]:
    """Share of seeds whose CR2-BM and randomisation intervals contain TRUE."""
    cr2, ri = [], []
    for seed in seeds:  # one simulated pilot per seed
        frame = trial_frame(n_units=n_units, seed=seed)
        panel = trial_panel(TRUE, frame=frame, alloc_seed=1000 + seed, **SCHEMES[scheme])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = ENTRY.fit(panel, "outcome", EstimatorOptions(), np.random.default_rng(seed))
            b = apply_inference(panel, "outcome", ENTRY,
                                EstimatorOptions(inference="permutation", replications=reps),
                                np.random.default_rng(seed))  # fmt: skip
        cr2.append(a.ci_lower <= TRUE <= a.ci_upper)
        ri.append(b.ci_lower <= TRUE <= b.ci_upper)
    return float(np.mean(cr2)), float(np.mean(ri)), len(cr2)


def _consistent(share: float, n: int) -> bool:
    """95% coverage is within the 99.9% binomial interval of the observed share."""
    lo, hi = binomial_interval(round(share * n), n, 0.999)
    return lo <= 0.95 <= hi


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_intervals_cover_the_true_effect_fast(scheme: str) -> None:
    cr2, ri, n = _coverage(scheme, range(40), n_units=24, reps=199)
    assert _consistent(cr2, n), f"CR2-BM coverage {cr2:.2f} over {n} pilots"
    assert _consistent(ri, n), f"randomisation coverage {ri:.2f} over {n} pilots"


def test_few_units_keep_honest_cr2_intervals() -> None:
    """Twelve units, six treated: Bell-McCaffrey degrees of freedom keep coverage near 95%."""
    hits = []
    for seed in range(80):
        frame = trial_frame(n_units=12, seed=seed)
        panel = trial_panel(TRUE, frame=frame, scheme="complete", treated=6, alloc_seed=seed)
        r = ENTRY.fit(panel, "outcome", EstimatorOptions(), np.random.default_rng(0))
        hits.append(r.ci_lower <= TRUE <= r.ci_upper)
    assert _consistent(float(np.mean(hits)), len(hits)), np.mean(hits)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_intervals_cover_the_true_effect_long(scheme: str) -> None:
    cr2, ri, _ = _coverage(scheme, range(400), n_units=40, reps=499)
    assert 0.92 <= cr2 <= 0.98, f"CR2-BM coverage {cr2:.3f}"
    assert 0.92 <= ri <= 0.98, f"randomisation coverage {ri:.3f}"
