"""The typed result parts: frozen, copy-on-read tables, and a bottom layer that imports nothing above it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pilotlab.results
from pilotlab.results import (
    TIDY_FIELDS,
    EffectResult,
    LinearFit,
    LinearParts,
    NotRun,
    RobustnessCheck,
    SyntheticTables,
    Table,
)

SRC = Path(pilotlab.results.__file__).resolve().parent


def test_table_is_read_only_and_hands_out_copies() -> None:
    source = pd.DataFrame({"unit": ["a", "b"], "weight": [0.25, np.nan]})
    t = Table(source)
    source.loc[0, "weight"] = 9.0  # changing the source afterwards changes nothing
    f = t.frame
    f.loc[1, "weight"] = 7.0  # nor does changing what a reader got
    t.column("weight")[0] = 5.0
    assert t.frame["weight"].iloc[0] == 0.25 and np.isnan(t.frame["weight"].iloc[1])
    assert t.records() == [{"unit": "a", "weight": 0.25}, {"unit": "b", "weight": None}]
    assert t.columns == ("unit", "weight") and len(t) == 2
    assert t == Table(pd.DataFrame({"unit": ["a", "b"], "weight": [0.25, np.nan]}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t._frame = pd.DataFrame()  # type: ignore[misc]


def test_linear_parts_contrast() -> None:
    fit = LinearFit(
        X=np.eye(3),
        y=np.ones(3),
        beta=np.array([1.0, 2.0, 4.0]),
        resid=np.zeros(3),
        cluster=np.arange(3),
        names=("a", "b", "c"),
        df_absorbed=0,
        xtx_inv=np.eye(3),
        vcov=np.eye(3),
        vcov_type="cluster",
        n_clusters=3,
        df_resid=2,
    )
    assert LinearParts(fit, coef_index=1).contrast() @ fit.beta == 2.0
    assert LinearParts(fit, combination=np.array([0, 0.5, 0.5])).contrast() @ fit.beta == 3.0


def test_tidy_columns_are_the_field_list() -> None:
    r = EffectResult("twfe", "y", 1.0, 0.5, 0.0, 2.0, 0.05, 0.05, "cluster", 10, 5, 2, 5, 2)
    assert tuple(r.tidy().columns) == TIDY_FIELDS
    assert r.headline()["nobs"] == 10


def test_parts_default_to_absent_and_checks_serialise_their_kind() -> None:
    r = EffectResult("twfe", "y", 1.0, 0.5, 0.0, 2.0, 0.05, 0.05, "cluster", 10, 5, 2, 5, 2)
    assert (r.linear, r.staggered, r.synthetic, r.group_means, r.inference_details) == (None,) * 5
    assert not hasattr(r, "details")
    c = RobustnessCheck("leave_one_out", 1.0, 0.0, 2.0, None, "", NotRun("too few units"))
    assert c.to_dict()["details"] == {"reason": "too few units"} and c.inference is None
    assert SyntheticTables(pre_rmspe=float("nan")).to_dict()["pre_rmspe"] is None


def _pilotlab_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pilotlab"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("pilotlab"))
    return out


def test_results_import_nothing_above_them() -> None:
    """results is the bottom layer (beside exceptions): no import of the evidence record,
    estimators or spec, even
    inside a function (the old lazy import of the evidence module made a circle)."""
    for path in SRC.glob("*.py"):
        above = {
            m
            for m in _pilotlab_imports(path)
            if not m.startswith("pilotlab.results") and m != "pilotlab.exceptions"
        }
        assert not above, f"{path.name} imports {sorted(above)}"
