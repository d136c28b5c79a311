"""An estimator registered at run time (``pilotlab.catalogue.register``) is a first-class one.

The example package of tests/support/plugin is imported from its folder and registered for
the duration of each test; the pilot file then accepts it, its ``design.options`` are checked
against its own model and reach its fit, and ``evaluate`` runs it.
"""

from __future__ import annotations

import warnings

import pytest

from pilotlab import catalogue
from pilotlab.engine import evaluate
from pilotlab.exceptions import EstimationError, SpecError
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict, plugins

NAME = "change_score"


def _spec(sim, **design):
    return parse_pilot(
        pilot_dict(
            treatment={"units": list(sim.treated_units), "start": sim.start},
            design={"estimator": NAME, **design},
        )
    )


def _reference(sim, first: int, start: int) -> float:
    """Treated minus comparison areas' mean change, from the data with pandas alone."""
    d = sim.data
    t = d["period"].map(sorted(d["period"].unique()).index)
    change = (
        d[t >= start].groupby("area_code")["outcome"].mean()
        - d[(t < start) & (t >= first)].groupby("area_code")["outcome"].mean()
    )
    treated = change.index.isin(sim.treated_units)
    return float(change[treated].mean() - change[~treated].mean())


def test_registering_makes_the_name_valid_for_one_test_only(monkeypatch) -> None:
    sim = make_pilot_panel(20, 8, 5, 4, seed=1)
    with pytest.raises(SpecError, match=f"design.estimator: found '{NAME}', which is not an"):
        _spec(sim)
    with monkeypatch.context() as mp:
        plugins.registered(mp, plugins.example_entry())
        assert NAME in catalogue.names() and catalogue.title(NAME) == plugins.example_module().TITLE
        spec = _spec(sim, options={"pre_periods_used": 2})
        opts = spec.design.estimator_options()
        assert type(opts).__name__ == "ChangeScoreOptions" and opts.pre_periods_used == 2
        from pilotlab.spec.models import DesignSpec

        schema = DesignSpec.model_json_schema()["properties"]["estimator"]
        assert NAME in schema["enum"]
    assert NAME not in catalogue.names()  # restored: other tests never see it
    with pytest.raises(SpecError):
        _spec(sim)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pre_periods_used": 0}, "design.options.pre_periods_used: found 0"),
        ({"pre_period_used": 2}, "design.options.pre_period_used: unknown key"),
        ({"pre_periods_used": "two"}, "design.options.pre_periods_used: found 'two'"),
    ],
)
def test_its_option_model_checks_design_options(monkeypatch, options, message) -> None:
    plugins.registered(monkeypatch, plugins.example_entry())
    sim = make_pilot_panel(20, 8, 5, 4, seed=1)
    with pytest.raises(SpecError) as err:
        _spec(sim, options=options)
    assert message in str(err.value)


def test_options_of_an_estimator_that_declares_none_are_refused_under_their_key() -> None:
    sim = make_pilot_panel(20, 8, 5, 4, seed=1)
    with pytest.raises(SpecError) as err:
        parse_pilot(
            pilot_dict(
                treatment={"units": list(sim.treated_units), "start": sim.start},
                design={"estimator": "did", "options": {"pre_periods_used": 2}},
            )
        )
    assert "design.options: only an estimator that declares its own options" in str(err.value)


@pytest.mark.parametrize("used", [None, 1, 3])
def test_evaluate_runs_it_with_its_options(monkeypatch, used: int | None) -> None:
    """design.options reaches the fit: the estimate is the one for that many pre-periods."""
    plugins.registered(monkeypatch, plugins.example_entry())
    sim = make_pilot_panel(24, 9, 6, 5, effect=1.0, seed=2)
    spec = _spec(sim, **({"options": {"pre_periods_used": used}} if used else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate(spec, data=sim.data)
    r = ev.outcomes[0].result
    assert ev.estimator.name == NAME and r.estimator == NAME
    first = 0 if used is None else 5 - used
    assert r.estimate == pytest.approx(_reference(sim, first, 5), rel=1e-10)
    others = {_reference(sim, f, 5) for f in (0, 4, 2) if f != first}
    assert all(abs(r.estimate - o) > 1e-6 for o in others)


def test_an_impossible_option_value_is_a_clear_error(monkeypatch) -> None:
    plugins.registered(monkeypatch, plugins.example_entry())
    sim = make_pilot_panel(24, 9, 6, 5, seed=2)
    spec = _spec(sim, options={"pre_periods_used": 7})
    with pytest.raises(EstimationError, match=r"design.options.pre_periods_used is 7.*at most 5"):
        evaluate(spec, data=sim.data)


def test_power_permutation_shortcut_declines_a_regression_on_one_row_per_area(monkeypatch) -> None:
    """Power's common-start randomisation shortcut reads observation weights off the fit; for a
    fit with one row per area it must decline (and refit), not fail on the shapes."""
    from pilotlab.data import panel_from_frame
    from pilotlab.estimators import EstimatorOptions
    from pilotlab.power.simulate import _time_weights

    entry = plugins.registered(monkeypatch, plugins.example_entry())
    sim = make_pilot_panel(24, 9, 6, 5, seed=2)
    spec = _spec(sim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = panel_from_frame(sim.data, spec)
    opts = EstimatorOptions(inference="permutation")
    assert _time_weights(panel, "outcome", entry, opts) is None
    did = catalogue.get("did")  # a regression on the panel's rows still takes the shortcut
    assert _time_weights(panel, "outcome", did, opts) is not None
