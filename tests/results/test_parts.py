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
    Criterion,
    DesignMDE,
    EffectResult,
    EvidenceStrength,
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


def test_result_parts_are_typed_not_loose_mappings() -> None:
    """No result field is ``Any`` (the evidence strength and the design MDE included)."""
    loose = {
        (name, f.name)
        for name in pilotlab.results.__all__
        if dataclasses.is_dataclass(cls := getattr(pilotlab.results, name))
        for f in dataclasses.fields(cls)
        if "Any" in str(f.type)
    }
    assert loose == set()


def test_evidence_strength_and_design_mde_serialise_as_the_record_blocks() -> None:
    es = EvidenceStrength(
        rubric="r",
        rubric_version="2",
        level=2,
        max_level=3,
        description="Level 2.",
        base_level=3,
        downgraded_for=("missing data",),
        criteria=(Criterion("missing data", False, "too many"), Criterion("x", None, "n/a")),
    )
    d = es.to_dict()
    assert list(d) == [
        "rubric",
        "rubric_version",
        "level",
        "max_level",
        "description",
        "base_level",
        "downgraded_for",
        "criteria",
    ]  # no house_rule unless one applied
    assert d["downgraded_for"] == ["missing data"]
    assert d["criteria"][1] == {"criterion": "x", "met": None, "reason": "n/a"}
    assert es.criterion("x") == Criterion("x", None, "n/a") and es.criterion("y") is None
    ruled = dataclasses.replace(es, house_rule="fit")
    assert ruled.to_dict()["house_rule"] == "fit"
    with pytest.raises(dataclasses.FrozenInstanceError):
        es.level = 3  # type: ignore[misc]

    m = DesignMDE(
        mde=np.float64(0.5),
        sigma2=1.0,
        rho=np.nan,
        pre_periods=10,
        post_periods=6,
        n_units=80,
        n_treated=8,
        df=None,
        mde_iid=0.4,
        mde_simulated_design=0.6,
        assumptions=("AR(1)",),
        target_power=0.8,
    )
    md = m.to_dict()
    assert md["rho"] is None and type(md["mde"]) is float and md["assumptions"] == ["AR(1)"]
    assert list(md)[-2:] == ["target_power", "declared_mde"] and md["declared_mde"] is None


def test_results_import_nothing_above_them() -> None:
    """results sits just above exceptions, the lazy exports and the outcome frameworks: no import
    of the evidence record, estimators or spec, even inside a function (the old lazy import of
    the evidence module made a circle)."""
    for path in SRC.glob("*.py"):
        above = {
            m
            for m in _pilotlab_imports(path)
            if not m.startswith("pilotlab.results")
            and m not in ("pilotlab.exceptions", "pilotlab.frameworks", "pilotlab.lazy")
        }
        assert not above, f"{path.name} imports {sorted(above)}"
