"""The estimator catalogue: what each estimator is and can do, declared once.

Every estimator, built in or from another package, is an :class:`EstimatorEntry`: its name, a
human title, a plain-English description, its fit function, the model of its own options and
its :class:`Capabilities`. The rest of pilotlab asks the capabilities (which inference methods,
which layouts, whether the estimate is a linear combination of a regression, whether it is a
synthetic design...), never the name.

Entries are found in two ways:

* the entry-point group ``pilotlab.estimators`` (pilotlab's own estimators are declared there in
  ``pyproject.toml`` exactly like a third-party package's), loaded the first time the catalogue
  is read; each entry point names an :class:`EstimatorEntry` object;
* :func:`register` at run time, for an estimator defined in a script or notebook.

This module sits at the bottom of the layers (beside :mod:`pilotlab.results`): the pilot-file
schema checks ``design.estimator`` against :func:`names`, and the report and registry read
titles from here, without importing the estimators themselves.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

from pilotlab.exceptions import EstimationError

if TYPE_CHECKING:  # the fit signature only; no run-time dependency on the layers above
    import numpy as np
    from pydantic import BaseModel

    from pilotlab.data.panel import Panel
    from pilotlab.estimators.base import EstimatorOptions
    from pilotlab.estimators.block_map import BlockMap, PrePeriodMap
    from pilotlab.results import EffectResult

__all__ = [
    "ENTRY_POINT_GROUP",
    "ESTIMATORS",
    "AutoRole",
    "BlockMapFunction",
    "Capabilities",
    "EstimatorEntry",
    "FitFunction",
    "InferenceRule",
    "entries",
    "get",
    "load_error",
    "names",
    "register",
    "title",
]

ENTRY_POINT_GROUP = "pilotlab.estimators"

#: When ``design.estimator: auto`` picks an estimator (the rule is documented in the README):
#: ``few_treated`` (one to three treated units with a long pre-period), ``staggered`` (treated
#: units start at different times), ``two_periods`` (one period before, one after),
#: ``common_start`` (several periods, one start), ``randomised`` (the treated units were drawn
#: by the pilot file's ``assignment``, with one common start) and ``switching`` (treatment that
#: stops, or starts and stops, in the data).
AutoRole = Literal[
    "few_treated", "staggered", "two_periods", "common_start", "randomised", "switching"
]

FitFunction = Callable[["Panel", str, "EstimatorOptions", "np.random.Generator"], "EffectResult"]
#: ``rule(method, n_treated, n_donors, name) -> (method, reason)``: an estimator's own rule for
#: ``design.inference.method: auto`` (e.g. synthetic designs choose between placebo and
#: jackknife inference by the number of treated units and donors).
InferenceRule = Callable[[str, int, int, str], tuple[str, str]]
#: ``block_map(panel, outcome, options, estimate) -> BlockMap | None``: the estimator's
#: headline as a linear map of the outcomes given each unit's cohort, when it is one (so that
#: randomisation inference need not re-fit every re-assignment).
BlockMapFunction = Callable[["Panel", str, "EstimatorOptions", float], "BlockMap | None"]
#: ``pre_period_map(panel, outcome, options) -> PrePeriodMap | None``: the estimator's
#: pre-period event-time estimates and variances for any re-assignment of cohorts, when they are
#: functions of per-block sums (so that the randomisation pre-test need not re-fit either).
PrePeriodMapFunction = Callable[["Panel", str, "EstimatorOptions"], "PrePeriodMap | None"]


@dataclass(frozen=True)
class Capabilities:
    """What an estimator can do; every module that treats estimators differently asks these.

    Attributes
    ----------
    inference
        Inference methods it supports. The first one it computes itself is its
        :attr:`base_inference`; ``wild_bootstrap`` and ``permutation`` are applied after the fit
        by :mod:`pilotlab.inference` (the wild bootstrap needs ``linear``).
    layouts
        Data layouts it accepts (``panel``, ``repeated_cross_section``, ``microdata``: person
        rows aggregated to area x period cells, which only an estimator that reads the cell
        statistics exactly may declare).
    staggered
        Valid under staggered adoption with effects that differ by cohort and over time.
    linear
        Its estimate is a fixed linear combination of the coefficients of one least-squares fit
        whose parts the result exposes (:attr:`EffectResult.linear`): this enables the wild
        cluster bootstrap by re-projection, Romano-Wolf adjustment across outcomes, and power by
        shifting outcomes (adding ``delta`` to treated outcomes moves the estimate by ``delta``).
    closed_form_permutation
        On a balanced panel without covariates or weights the estimate is the difference between
        treated and comparison units' means of one per-unit contrast, so randomisation inference
        computes every re-assignment's estimate without refitting.
    twfe_coefficient
        ``linear``, and the estimate with its standard error is the one treatment coefficient of
        the two-way fixed-effects regression on the whole panel: power planning then solves
        every placebo pilot in one pass.
    event_times
        Estimates an effect for each period relative to the start (an event study).
    synthetic
        Builds a weighted comparison from donor units (synthetic control family): the report
        shows donor weights and paths, and the evidence rubric checks the pre-period fit.
    covariates
        Accepts ``design.covariates``.
    randomised
        Analyses a randomised allocation at the unit level (the randomised estimator):
        randomisation inference re-draws the allocation as its scheme did and computes every
        re-draw's estimate in one batched solve (:mod:`pilotlab.inference.randomisation`).
    switching
        Valid when treatment is not absorbing (units stop being treated, or move in and out):
        every estimator without it assumes a unit stays treated once it starts, and a panel
        whose treatment switches off is refused for it.
    small_sample_cluster
        Its ``cluster`` inference is small-sample corrected (CR2 standard errors with
        Bell-McCaffrey degrees of freedom), which stays close to its nominal level with few
        clusters: the evidence rubric then counts it as suited to few clusters.
    groups
        Compares eligible and ineligible groups within each unit (``data.group``): it needs that
        column, and every estimator without the capability refuses a panel that has it.
    auto
        The situation in which ``estimator: auto`` picks it (at most one estimator per role).
    """

    inference: tuple[str, ...]
    layouts: tuple[str, ...] = ("panel", "repeated_cross_section")
    staggered: bool = False
    linear: bool = False
    closed_form_permutation: bool = False
    twfe_coefficient: bool = False
    event_times: bool = False
    synthetic: bool = False
    covariates: bool = False
    randomised: bool = False
    switching: bool = False
    small_sample_cluster: bool = False
    groups: bool = False
    auto: AutoRole | None = None

    def __post_init__(self) -> None:
        if not self.inference:
            raise ValueError("an estimator must support at least one inference method")
        if self.twfe_coefficient and not self.linear:
            raise ValueError("twfe_coefficient estimators must also be linear")

    @property
    def base_inference(self) -> str:
        """The inference computed by the fit itself: cluster-robust if offered, else the first
        method (post-hoc methods such as permutation are applied on top)."""
        return "cluster" if "cluster" in self.inference else self.inference[0]


@dataclass(frozen=True)
class EstimatorEntry:
    """A registered estimator.

    ``name`` is what ``design.estimator`` says in the pilot file; ``title`` is how the report
    names it (``"synthetic difference in differences"``); ``description`` is one plain sentence
    of what it does. ``options`` is the pydantic model of its own settings (the pilot file's
    ``design.options`` block for an estimator from another package; pilotlab's own estimators
    keep their named blocks such as ``design.callaway_santanna``), or ``None`` when it has none.
    ``assumptions`` are plain-English sentences the report adds to its list of assumptions
    (what this estimator assumes beyond parallel trends, no spill-overs and no anticipation).
    """

    name: str
    title: str
    fit: FitFunction
    description: str
    capabilities: Capabilities
    options: type[BaseModel] | None = None
    inference_rule: InferenceRule | None = field(default=None, compare=False)
    assumptions: tuple[str, ...] = ()
    block_map: BlockMapFunction | None = field(default=None, compare=False)
    pre_period_map: PrePeriodMapFunction | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name == "auto":
            raise ValueError(
                f"estimator name {self.name!r} must be a Python-style identifier other than 'auto'"
            )
        if not self.title.strip():
            raise ValueError(f"estimator {self.name!r} needs a title for the report")

    @property
    def base_inference(self) -> str:
        """See :attr:`Capabilities.base_inference`."""
        return self.capabilities.base_inference


_REGISTERED: dict[str, EstimatorEntry] = {}
_BROKEN: dict[str, str] = {}  # entry points that failed to load: why
_LOADED = False
_LOCK = threading.RLock()


def register(entry: EstimatorEntry) -> EstimatorEntry:
    """Add an estimator to the catalogue (a later entry of the same name replaces it)."""
    if not isinstance(entry, EstimatorEntry):
        raise TypeError(f"register() takes an EstimatorEntry, not {type(entry).__name__}")
    with _LOCK:
        _REGISTERED[entry.name] = entry
    return entry


def _load() -> None:
    """Load every entry point of the group once (pilotlab's own and other packages')."""
    global _LOADED
    with _LOCK:
        if _LOADED:
            return
        _LOADED = True  # set first: an entry point's module may itself read the catalogue
        points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        if not any(p.value.startswith("pilotlab.") for p in points):
            # pilotlab run from a source tree without its package metadata
            importlib.import_module("pilotlab.estimators")
        for point in points:
            dist = getattr(getattr(point, "dist", None), "name", None)
            origin = f"entry point {point.value}" + (f" of the package {dist}" if dist else "")
            try:
                obj: Any = point.load()
            except Exception as exc:  # a broken plug-in must not stop pilotlab
                _BROKEN[point.name] = f"{origin} raised {type(exc).__name__}: {exc}"
                continue
            if not isinstance(obj, EstimatorEntry):
                _BROKEN[point.name] = f"{origin} is a {type(obj).__name__}, not an EstimatorEntry"
                continue
            _REGISTERED.setdefault(obj.name, obj)


def entries() -> dict[str, EstimatorEntry]:
    """Every available estimator by name (sorted)."""
    _load()
    with _LOCK:
        return dict(sorted(_REGISTERED.items()))


def names() -> tuple[str, ...]:
    """Names ``design.estimator`` may take (besides ``auto``)."""
    return tuple(entries())


def load_error(name: str) -> str | None:
    """Why the installed estimator ``name`` could not be loaded (``None`` if it loaded or is not
    installed): its entry point raised on import, or does not name an EstimatorEntry."""
    _load()
    with _LOCK:
        return None if name in _REGISTERED else _BROKEN.get(name)


def get(name: str) -> EstimatorEntry:
    """The estimator called ``name``; an unknown name lists the available ones."""
    found = entries().get(name)
    if found is not None:
        return found
    broken = load_error(name)
    if broken:
        raise EstimationError(
            f"estimator '{name}' is installed but could not be loaded ({broken}); "
            "reinstall or fix the package that provides it"
        )
    raise EstimationError(
        f"estimator '{name}' is not available; available estimators: {', '.join(names())}"
    )


def title(name: str) -> str:
    """The report's name for an estimator (the name itself, spaced, if it is not installed)."""
    found = entries().get(name)
    return found.title if found is not None else name.replace("_", " ")


class _Catalogue(Mapping[str, EstimatorEntry]):
    """A live, read-only mapping of the catalogue (``ESTIMATORS["twfe"]``)."""

    def __getitem__(self, name: str) -> EstimatorEntry:
        return entries()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(entries())

    def __len__(self) -> int:
        return len(entries())

    def __repr__(self) -> str:
        return f"<estimator catalogue: {', '.join(names())}>"


#: Every available estimator by name, read-only and always current.
ESTIMATORS: Mapping[str, EstimatorEntry] = _Catalogue()
