"""Errors and warnings raised by pilotlab.

Every user mistake is a :class:`PilotlabError` whose message names the file, key path or column,
says what was found, what is allowed and how to fix it. The command line turns these into a
one-paragraph message and exit code 1, never a traceback.

::

    PilotlabError
    ├── SpecError          the pilot file: YAML syntax, unknown / missing keys, invalid values
    ├── DataError          the data file: missing, unreadable, wrong columns, malformed periods
    ├── EstimationError    the design cannot be estimated (no comparison units, singular design)
    └── RegistryError      the pilot registry: unknown pilot, conflicting registration

    PilotlabWarning (UserWarning)
    ├── FewClustersWarning       too few (treated) clusters for cluster-robust inference
    ├── UnbalancedPanelWarning   units observed in different sets of periods
    ├── MissingDataWarning       outcome values missing and dropped
    ├── RegistrationDateWarning  registration start date outside the first treated period
    └── DesignWarning            anything else the reader of a report should know

Every warning pilotlab emits has a stable kebab-case code (:data:`NOTICE_CODES`, the one table of
codes, their category and meaning). It travels one way: :func:`warn` raises the code's category
with the code attached, :func:`collect` runs a step and returns its result plus the
:class:`Notice` (code and message) of each warning it raised, and results carry those notices.
Readers (the report, the registry, scripts) decide by the code, never by the English text:
whether a notice belongs in the technical annex is the code's ``technical`` flag.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = [
    "NOTICE_CODES",
    "DataError",
    "DesignWarning",
    "EstimationError",
    "FewClustersWarning",
    "MissingDataWarning",
    "Notice",
    "NoticeCode",
    "PilotlabError",
    "PilotlabWarning",
    "RegistrationDateWarning",
    "RegistryError",
    "SpecError",
    "UnbalancedPanelWarning",
    "collect",
    "emit",
    "notice",
    "warn",
]

T = TypeVar("T")

#: The code of a warning raised without one (e.g. ``warnings.warn(text, DesignWarning)`` in
#: third-party code): shown in the technical annex, since nothing says it is plain English.
UNCODED = "uncoded"


class PilotlabError(Exception):
    """Base class of every error caused by a pilot file, its data or the registry."""


class SpecError(PilotlabError):
    """The pilot file is not valid."""


class DataError(PilotlabError):
    """The data file cannot be used as the pilot file describes it."""


class EstimationError(PilotlabError):
    """The requested estimator cannot be applied to this design."""


class RegistryError(PilotlabError):
    """A registry operation failed for a reason the user can fix."""


class PilotlabWarning(UserWarning):
    """Base class of pilotlab's warnings; each also appears in the report.

    ``code`` is the warning's stable code (a key of :data:`NOTICE_CODES`); a warning raised the
    standard way, ``warnings.warn(text, DesignWarning)``, has the code ``"uncoded"``.
    """

    def __init__(self, message: object = "", code: str = UNCODED) -> None:
        super().__init__(message)
        self.code = code

    @property
    def notice(self) -> Notice:
        """The code and message of this warning."""
        return notice(self.code, str(self))


class FewClustersWarning(PilotlabWarning):
    """Too few clusters (or treated clusters) for cluster-robust standard errors."""


class UnbalancedPanelWarning(PilotlabWarning):
    """Units are observed in different sets of periods."""


class MissingDataWarning(PilotlabWarning):
    """Missing outcome values were dropped."""


class DesignWarning(PilotlabWarning):
    """A property of the design the reader should know about."""


class RegistrationDateWarning(PilotlabWarning):
    """The registration's start date and the first treated period in the data disagree."""


@dataclass(frozen=True)
class NoticeCode:
    """One entry of the table of warning codes.

    Attributes
    ----------
    code : str
        Stable kebab-case name of what the warning means.
    category : type of PilotlabWarning
        The warning class raised under this code.
    technical : bool
        Whether the report shows it in the technical annex rather than on the main page: its
        message names a method, a technical term or a raw column or pilot-file key.
    meaning : str
        What the warning tells the reader, in one line.
    """

    code: str
    category: type[PilotlabWarning]
    technical: bool
    meaning: str


def _table(*rows: tuple[str, type[PilotlabWarning], bool, str]) -> Mapping[str, NoticeCode]:
    return MappingProxyType({r[0]: NoticeCode(*r) for r in rows})


#: Every code pilotlab emits: code -> (category, technical, meaning). Codes never change meaning;
#: a new kind of warning gets a new code.
NOTICE_CODES: Mapping[str, NoticeCode] = _table(
    # the data
    ("missing-outcome", MissingDataWarning, True,
     "Outcome values are missing and were left out of the estimates."),
    ("no-pre-period-outcome", MissingDataWarning, True,
     "Treated units have no outcome value before their start."),
    ("unbalanced-panel", UnbalancedPanelWarning, False,
     "Units are observed in different sets of periods."),
    ("period-gaps", DesignWarning, False,
     "Some periods inside the data's range have no data at all."),
    ("registration-date", RegistrationDateWarning, True,
     "The registered start date falls outside the first treated period in the data."),
    # regression estimators
    ("few-clusters", FewClustersWarning, True,
     "Too few (treated) clusters for cluster-robust standard errors."),
    ("iid-errors", DesignWarning, False,
     "Standard errors assume independent observations."),
    ("staggered-twfe", DesignWarning, True,
     "Staggered starts estimated by a two-way fixed-effects regression."),
    ("staggered-event-study", DesignWarning, True,
     "Staggered starts in a two-way fixed-effects event study."),
    # Callaway & Sant'Anna
    ("cs-cells-dropped", DesignWarning, True,
     "Some group-time effects could not be estimated and are left out of the aggregations."),
    ("cs-unbalanced-cells", DesignWarning, True,
     "Unbalanced panel: each group-time effect uses the units observed in both its periods."),
    ("cs-no-pre-period", DesignWarning, False,
     "Units treated from the first period were dropped from the estimate."),
    ("imputation-no-untreated-period", DesignWarning, False,
     "Treated units without an untreated period were left out of the imputation estimate."),
    ("imputation-no-comparison-period", DesignWarning, False,
     "Treated observations in periods when every unit is treated could not be imputed."),
    ("imputation-leave-out-single", DesignWarning, True,
     "Cohort-period cells with a single unit use the plain average in the leave-out variance."),
    ("no-never-treated", DesignWarning, False,
     "No never-treated units: the last cohort to be treated is the comparison group."),
    ("single-unit-cohort", DesignWarning, True,
     "A cohort has a single unit; its effects and standard errors are unreliable."),
    ("cs-pretest-unavailable", DesignWarning, True,
     "The joint pre-trend test of the group-time effects cannot be computed."),
    # synthetic estimators
    ("jackknife-fallback", DesignWarning, False,
     "The jackknife is undefined; placebo inference was used instead."),
    ("poor-pre-fit", DesignWarning, True,
     "The synthetic comparison fits the pilot area poorly before the start."),
    ("covariates-ignored", DesignWarning, True,
     "The synthetic estimator does not adjust for design.covariates."),
    ("short-pre-period", DesignWarning, True,
     "Very few pre-periods behind the synthetic weights."),
    # randomised pilots
    ("randomised-additive-adjustment", DesignWarning, False,
     "An arm is too small for its own adjustment; one adjustment serves every arm."),
    ("randomised-units-without-outcome", MissingDataWarning, False,
     "Allocated units have no outcome after the start and are left out of the comparison."),
    # inference
    ("permutation-no-interval", DesignWarning, True,
     "The estimator is not linear in the outcome: no permutation interval."),
    ("permutation-assignments-skipped", DesignWarning, True,
     "Some re-assignments of treatment could not be estimated and were left out."),
    ("wild-bootstrap-unbounded", DesignWarning, False,
     "The wild-bootstrap interval is unbounded."),
    ("romano-wolf-fallback", DesignWarning, False,
     "Romano-Wolf was not possible; Holm's adjustment was used instead."),
    # diagnostics
    ("bacon-weights-ignored", DesignWarning, True,
     "The Goodman-Bacon decomposition ignores the weight column."),
    # the registry (printed by the command line)
    ("unregistered-deviation", DesignWarning, False,
     "The pilot file differs from its registered plan and the change is not registered."),
    (UNCODED, PilotlabWarning, True,
     "A warning raised without a code (e.g. by a third-party estimator)."),
)  # fmt: skip


@dataclass(frozen=True)
class Notice:
    """A warning as results carry it: its stable ``code``, its ``message`` and its placement.

    Build one with :func:`notice`, which takes ``technical`` from :data:`NOTICE_CODES`.
    Two notices are the same when code, message and placement are.
    """

    code: str
    message: str
    technical: bool = True

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str]:
        """``{"code": ..., "message": ...}``, as the evidence record writes it."""
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_record(cls, value: object) -> Notice:
        """The notice of an evidence-record entry (an object, or a plain string from records
        written before warnings had codes, which becomes an ``uncoded`` notice)."""
        if isinstance(value, Mapping):
            return notice(str(value.get("code", UNCODED)), str(value.get("message", "")))
        return notice(UNCODED, str(value))


def notice(code: str, message: str) -> Notice:
    """The :class:`Notice` of ``code`` (placed as :data:`NOTICE_CODES` says) with ``message``.

    Codes not in the table (a third-party estimator's own) are technical.
    """
    entry = NOTICE_CODES.get(code)
    return Notice(code, message, True if entry is None else entry.technical)


def warn(code: str, message: str, stacklevel: int = 2) -> Notice:
    """Raise the warning of ``code`` (its category from :data:`NOTICE_CODES`) and return its notice.

    ``stacklevel`` counts as for :func:`warnings.warn`, from the caller of this function.
    """
    entry = NOTICE_CODES.get(code)
    category = DesignWarning if entry is None else entry.category
    warnings.warn(category(message, code=code), stacklevel=stacklevel + 1)
    return notice(code, message)


def emit(item: Notice, stacklevel: int = 2) -> None:
    """Raise ``item`` as its warning (e.g. to re-emit a notice a step collected)."""
    warn(item.code, item.message, stacklevel=stacklevel + 1)


def collect(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> tuple[T, tuple[Notice, ...]]:
    """Run ``func(*args, **kwargs)`` and return its result and the notices it raised.

    Every :class:`PilotlabWarning` raised inside becomes a :class:`Notice` (in order, each code
    and message once); other warnings are raised again, unchanged, after ``func`` returns.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    found: dict[Notice, None] = {}
    for w in caught:
        if isinstance(w.message, PilotlabWarning):
            found[w.message.notice] = None
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return result, tuple(found)
