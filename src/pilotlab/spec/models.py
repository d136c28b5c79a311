"""Pydantic models of the pilot file (``pilot.yaml``); see ``pilot-spec.md`` for the contract."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails

from pilotlab import catalogue
from pilotlab.frameworks import METRIC_REF, Metric, split_ref
from pilotlab.spec.assignment import Assignment
from pilotlab.spec.costs import CostSpec
from pilotlab.spec.cycle import CycleSpec
from pilotlab.spec.metrics import resolve_metrics
from pilotlab.spec.trial import TrialSpec

__all__ = [
    "INFERENCE_METHODS",
    "ROBUSTNESS_CHECKS",
    "CallawaySantAnnaOptions",
    "CostSpec",
    "DataSpec",
    "DesignSpec",
    "InferenceSpec",
    "OutcomeSpec",
    "PilotSpec",
    "PowerSpec",
    "QuestionSpec",
    "RegistrationSpec",
    "SyntheticOptions",
    "TreatmentSpec",
    "WindowSpec",
]

Period = Annotated[str, Field(min_length=1)]

#: Upper bound of period counts (anticipation, windows): far beyond any real pilot, small enough
#: that arithmetic on period indices cannot overflow.
MAX_PERIODS = 100_000
#: Largest random seed (numpy accepts any non-negative integer; the evidence record stores it
#: as a JSON number, which other languages read safely up to 2**53).
MAX_SEED = 2**53
UnitId = str

InferenceMethod = Literal[
    "auto", "cluster", "wild_bootstrap", "permutation", "placebo", "jackknife", "robust", "iid"
]
RobustnessName = Literal[
    "placebo_in_time", "placebo_in_space", "leave_one_out", "alternative_estimators", "honest_did"
]
INFERENCE_METHODS: tuple[str, ...] = InferenceMethod.__args__  # type: ignore[attr-defined]
ROBUSTNESS_CHECKS: tuple[str, ...] = RobustnessName.__args__  # type: ignore[attr-defined]


def _as_period(value: Any) -> Any:
    """YAML reads ``2024`` as int and ``2024-04-01`` as a date: keep the user's text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value  # rejected by the str field with a clear message
    return str(value)


def _as_unit(value: Any) -> Any:
    """Unit ids are text; a whole number given from Python (``1001``) is its decimal text.

    A float (``1001.0``, ``1e3``) does not say how the id is written, so it is refused rather
    than guessed (the pilot-file loader already keeps unquoted ids as written).
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(
            f"found the number {value!r}, which does not say how the unit id is written; "
            "put unit ids in quotes, exactly as in the data"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )


class QuestionSpec(_Model):
    """An evaluation question."""

    text: str = Field(min_length=1)
    confirmatory: bool = False


class DataSpec(_Model):
    """Where the data are and which columns mean what."""

    path: str = Field(
        min_length=1,
        description="Data file relative to the pilot file (.csv or .parquet); for microdata "
        "also a folder or a glob of partitioned files.",
    )
    unit: str = Field(min_length=1, description="Column identifying the unit (area, school...).")
    time: str = Field(min_length=1, description="Column of periods.")
    unit_label: str = Field("area", description="What a unit is called in report prose.")
    cluster: str | None = Field(None, description="Cluster column for inference (default: unit).")
    weight: str | None = Field(None, description="Analytic weight column.")
    layout: Literal["panel", "repeated_cross_section", "microdata"] = "panel"
    person: str | None = Field(
        None, description="Person (or episode) id column of microdata (data.layout: microdata)."
    )
    source: str | None = Field(
        None, description="Where the data come from, for the report's source lines."
    )

    @model_serializer(mode="wrap")
    def _omit_unset_person(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Left out while unset, so the plan hash of a pilot without microdata is unchanged.
        out = handler(self)
        if isinstance(out, dict) and out.get("person") is None:
            out.pop("person", None)
        return out


class TreatmentSpec(_Model):
    """Who was treated when: exactly one of units+start, adoption, column."""

    units: list[UnitId] | None = None
    start: Period | None = None
    adoption: dict[UnitId, Period] | None = None
    column: str | None = None
    comparison: Literal["never_treated", "not_yet_treated"] | list[UnitId] = "never_treated"
    exclude: list[UnitId] = Field(default_factory=list)
    anticipation: int = Field(0, ge=0, le=MAX_PERIODS)
    eligible: list[UnitId] | None = Field(
        None, description="Units eligible for the pilot (default: every unit in the data)."
    )

    _norm_start = field_validator("start", mode="before")(classmethod(lambda cls, v: _as_period(v)))

    @field_validator("units", "exclude", "eligible", mode="before")
    @classmethod
    def _units_as_text(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_as_unit(u) for u in v]
        return v

    @field_validator("comparison", mode="before")
    @classmethod
    def _comparison_as_text(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_as_unit(u) for u in v]
        return v

    @field_validator("adoption", mode="before")
    @classmethod
    def _adoption_as_text(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {_as_unit(k): _as_period(p) for k, p in v.items()}
        return v

    @model_validator(mode="after")
    def _one_form(self) -> TreatmentSpec:
        forms = [
            name
            for name, present in (
                ("units + start", self.units is not None or self.start is not None),
                ("adoption", self.adoption is not None),
                ("column", self.column is not None),
            )
            if present
        ]
        if len(forms) > 1:
            raise ValueError(
                f"found {' and '.join(forms)}; give exactly one treatment form: "
                "'units' with 'start' (common start), 'adoption' (staggered) or 'column'"
            )
        if not forms:
            return self  # allowed only for planned pilots; checked by PilotSpec._treatment_given
        if forms == ["units + start"]:
            if not self.units:
                raise ValueError(
                    "'start' is given but 'units' is missing or empty; list the treated units"
                )
            if self.start is None:
                raise ValueError(
                    "'units' is given but 'start' is missing; add the first treated period"
                )
        if self.adoption is not None and not self.adoption:
            raise ValueError(
                "'adoption' is empty; map each treated unit to its first treated period"
            )
        return self

    @property
    def form(self) -> Literal["common", "adoption", "column", "planned"]:
        """Which treatment form the file uses (``planned``: none yet, power planning only)."""
        if self.adoption is not None:
            return "adoption"
        if self.column is not None:
            return "column"
        if self.units is None and self.start is None:
            return "planned"
        return "common"


class OutcomeSpec(_Model):
    """One outcome column evaluated."""

    column: str = Field(min_length=1)
    label: str | None = None
    primary: bool = False
    better: Literal["lower", "higher"] = "higher"
    mde: float | None = Field(
        None, gt=0, description="Smallest effect that matters, outcome units."
    )
    transform: Literal["none", "log", "asinh"] = "none"
    units: str | None = Field(None, description="Unit of measurement for chart subtitles.")
    metric: str | None = Field(
        None,
        json_schema_extra={"pattern": METRIC_REF},
        description="The outcome framework metric it measures, <framework>/<code> "
        "(`pilotlab frameworks` lists them).",
    )
    # the framework's metric, attached when the pilot file is validated
    _framework_metric: Metric | None = PrivateAttr(None)

    @field_validator("metric")
    @classmethod
    def _metric_ref(cls, v: str | None) -> str | None:
        if v is not None:
            split_ref(v)  # ValueError with the format to use
        return v

    @model_serializer(mode="wrap")
    def _omit_unset_metric(self, handler: SerializerFunctionWrapHandler) -> Any:
        # left out while unset, so the plan hash of a pilot without a metric is unchanged
        out = handler(self)
        if isinstance(out, dict) and out.get("metric") is None:
            out.pop("metric", None)
        return out

    @property
    def framework_metric(self) -> Metric | None:
        """The framework metric this outcome measures (``None`` without ``metric``)."""
        return self._framework_metric

    @property
    def display(self) -> str:
        """Label for the report."""
        return self.label or self.column


class WindowSpec(_Model):
    """Event-time window for dynamic effects."""

    pre: int = Field(8, ge=1, le=MAX_PERIODS)
    post: int = Field(8, ge=0, le=MAX_PERIODS)


class InferenceSpec(_Model):
    """How uncertainty is quantified."""

    method: InferenceMethod = "auto"
    replications: int = Field(999, ge=99, le=1_000_000)
    seed: int = Field(20240401, ge=0, le=MAX_SEED)
    weights: Literal["auto", "rademacher", "webb", "mammen"] = "auto"


class CallawaySantAnnaOptions(_Model):
    """Options of the Callaway & Sant'Anna estimator."""

    method: Literal["dr", "ipw", "reg"] = "dr"
    base_period: Literal["varying", "universal"] = "varying"
    aggregation: Literal["simple", "dynamic", "group", "calendar"] = "simple"
    balance_e: int | None = Field(
        None,
        ge=0,
        le=MAX_PERIODS,
        description="Dynamic aggregation only over cohorts observed this many periods after the start.",
    )


class SyntheticOptions(_Model):
    """Options of the synthetic control and synthetic DiD estimators."""

    predictors: list[str] = Field(default_factory=list)
    fit_on: Literal["each", "average"] = "average"


class PowerSpec(_Model):
    """Planning: how pseudo-pilots are drawn for power calculations (``pilotlab power``).

    ``treated`` is the planned number of treated units, drawn at random from the eligible units
    for each placebo pilot, or a list of the units that will be treated (default:
    ``treatment.units``). ``post_periods`` is the planned number of periods after the start
    (default: ``design.window.post``, else a quarter of the history). ``min_pre_periods`` is the
    fewest periods a placebo pilot keeps before its pseudo start. ``effects`` is the grid of
    effect sizes in outcome units (default: built around the analytic MDE). ``seed`` defaults to
    ``design.inference.seed``. ``conditional_on_units: true`` keeps the named units treated in
    every placebo pilot (power conditional on their own history, not the design's power).
    """

    treated: int | list[UnitId] | None = None
    post_periods: int | None = Field(None, ge=1, le=MAX_PERIODS)
    target_power: float = Field(0.8, gt=0, lt=1)
    simulations: int = Field(500, ge=20, le=1_000_000)
    effects: list[float] | None = None
    min_pre_periods: int | None = Field(None, ge=1, le=MAX_PERIODS, description="Default 4.")
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    conditional_on_units: bool | None = Field(
        None,
        description=(
            "Keep the named treated units in every placebo pilot (power conditional on their "
            "history). Default: draw as many units at random from the eligible ones."
        ),
    )

    @model_serializer(mode="wrap")
    def _omit_unset_planning_keys(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Keys added after plans were first hashed are left out while unset, so the plan hash
        # of a pilot that does not use them is unchanged.
        out = handler(self)
        if isinstance(out, dict):
            for key in ("min_pre_periods", "seed", "conditional_on_units"):
                if out.get(key) is None:
                    out.pop(key, None)
        return out

    @field_validator("treated", mode="before")
    @classmethod
    def _treated_as_text(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_as_unit(u) for u in v]
        return v

    @field_validator("treated")
    @classmethod
    def _treated_positive(cls, v: int | list[UnitId] | None) -> int | list[UnitId] | None:
        if isinstance(v, int) and not 1 <= v <= 10_000_000:
            raise ValueError(f"found {v}; give the number of units to treat (at least 1)")
        if isinstance(v, list) and not v:
            raise ValueError("the list is empty; list the units to treat or give their number")
        return v

    @field_validator("effects")
    @classmethod
    def _effects_finite(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if not v:
                raise ValueError("the list is empty; give effect sizes or leave the key out")
            if any(not math.isfinite(e) for e in v):
                raise ValueError("effect sizes must be finite numbers in outcome units")
        return v


def _estimator_enum(schema: dict[str, Any]) -> None:
    """The JSON Schema lists the estimators installed when it is generated."""
    schema["enum"] = ["auto", *catalogue.names()]


def _options_schemas(schema: dict[str, Any]) -> None:
    """The JSON Schema lists each installed estimator's options (``x-estimator-options``) and
    accepts an options block valid for one of them."""
    found: dict[str, Any] = {}
    for name, entry in catalogue.entries().items():
        if entry.options is not None:
            sub = entry.options.model_json_schema()
            if "$defs" not in sub:  # self-contained models only (no references to resolve)
                found[name] = sub
    if found:
        schema["x-estimator-options"] = found
        schema["anyOf"] = [{"type": "object", "maxProperties": 0}, *found.values()]


class DesignSpec(_Model):
    """The analysis plan."""

    estimator: str = Field(
        "auto",
        description="A registered estimator (`pilotlab estimators` lists them), or auto.",
        json_schema_extra=_estimator_enum,
    )
    covariates: list[str] = Field(default_factory=list)
    window: WindowSpec | None = None
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    multiple_testing: Literal["none", "holm", "bh", "romano_wolf"] = "holm"
    robustness: list[RobustnessName] = Field(default_factory=list)
    callaway_santanna: CallawaySantAnnaOptions = Field(default_factory=CallawaySantAnnaOptions)
    synthetic: SyntheticOptions = Field(default_factory=SyntheticOptions)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the named estimator (imputation, sun_abraham, or one from "
        "another package), checked against its option model.",
        json_schema_extra=_options_schemas,
    )
    power: PowerSpec = Field(default_factory=PowerSpec)

    @field_validator("estimator")
    @classmethod
    def _registered(cls, v: str) -> str:
        if v != "auto" and v not in catalogue.names():
            broken = catalogue.load_error(v)
            if broken:
                raise ValueError(
                    f"'{v}' is installed but could not be loaded ({broken}); reinstall or fix "
                    "the package that provides it, or choose another estimator"
                )
            raise ValueError(
                f"found '{v}', which is not an installed estimator; allowed: auto, "
                f"{', '.join(catalogue.names())}"
            )
        return v

    @model_validator(mode="after")
    def _estimator_options(self) -> DesignSpec:
        if not self.options:
            return self
        model = None if self.estimator == "auto" else catalogue.get(self.estimator).options
        if model is None:
            why = ValueError(
                "only an estimator that declares its own options takes them "
                f"(design.estimator is {self.estimator}); remove design.options"
            )
            raise ValidationError.from_exception_data(
                "DesignSpec",
                [{"type": "value_error", "loc": ("options",), "input": self.options,
                  "ctx": {"error": why}}],
            )  # fmt: skip
        try:
            model.model_validate(self.options)
        except ValidationError as exc:  # reported under design.options, not under design
            details: list[InitErrorDetails] = []
            for e in exc.errors():
                item: InitErrorDetails = {
                    "type": e["type"],
                    "loc": ("options", *e["loc"]),
                    "input": e["input"],
                }
                if "ctx" in e:
                    item["ctx"] = e["ctx"]
                details.append(item)
            raise ValidationError.from_exception_data(exc.title, details) from None
        return self

    def estimator_options(self) -> BaseModel | None:
        """``options`` validated against the named estimator's option model (``None`` if none)."""
        if self.estimator == "auto":
            return None
        model = catalogue.get(self.estimator).options
        return None if model is None else model.model_validate(self.options)


class RegistrationSpec(_Model):
    """Fields of a registration record beyond the core pilot keys (all optional)."""

    theory_of_change: str | None = None
    design_type: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    actual_start_date: str | None = None
    actual_end_date: str | None = None
    report_due: str | None = None
    publication: str | None = Field(
        None, description="Commitment to publish, e.g. 'within 12 months'."
    )

    _dates = field_validator(
        "start_date",
        "end_date",
        "actual_start_date",
        "actual_end_date",
        "report_due",
        mode="before",
    )(classmethod(lambda cls, v: _as_period(v)))


_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class PilotSpec(_Model):
    """A pilot: what was tried, where, when, what it should move and how it is judged."""

    id: str
    title: str = Field(min_length=1)
    summary: str | None = Field(None, max_length=300)
    status: Literal["planned", "live", "completed", "withdrawn"] = "planned"
    lead: str | None = None
    partners: list[str] = Field(default_factory=list)
    contact: str | None = None
    policy_area: str | None = None
    questions: list[QuestionSpec] = Field(default_factory=list)
    registration: RegistrationSpec = Field(default_factory=RegistrationSpec)
    data: DataSpec
    treatment: TreatmentSpec
    outcomes: list[OutcomeSpec] = Field(min_length=1)
    design: DesignSpec = Field(default_factory=DesignSpec)
    frameworks: list[str] = Field(
        default_factory=list,
        description="The programme's own outcome framework files or folders (relative to the "
        "pilot file); pilotlab's shipped frameworks are always known.",
    )
    costs: CostSpec | None = Field(None, description="What the pilot cost (value for money).")

    @model_validator(mode="after")
    def _metrics_agree(self, info: ValidationInfo) -> PilotSpec:
        ctx = info.context if isinstance(info.context, dict) else {}
        base = ctx.get("base_dir")
        outcomes, problems, _ = resolve_metrics(
            self.outcomes, self.frameworks, Path(base) if base is not None else None
        )
        if problems:
            raise ValidationError.from_exception_data(
                "PilotSpec",
                [{"type": "value_error", "loc": loc, "input": None,
                  "ctx": {"error": ValueError(msg)}} for loc, msg in problems],
            )  # fmt: skip
        if any(a is not b for a, b in zip(outcomes, self.outcomes, strict=True)):
            return self.model_copy(update={"outcomes": outcomes})
        return self

    assignment: Assignment | None = None
    cycle: CycleSpec | None = None
    trial: TrialSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _randomised_treatment(cls, raw: Any) -> Any:
        # A randomised pilot's treatment comes from its allocation; `treatment:` may be left out.
        if not isinstance(raw, dict) or raw.get("assignment") is None:
            return raw
        treatment = raw.get("treatment", {})
        assignment = raw["assignment"]
        stepped = isinstance(assignment, dict) and assignment.get("scheme") == "stepped"
        if isinstance(treatment, dict) and stepped and "comparison" not in treatment:
            # Waves are compared with the waves not yet treated (often every unit is treated).
            treatment = {**treatment, "comparison": "not_yet_treated"}
        return {**raw, "treatment": treatment}

    @field_validator("id")
    @classmethod
    def _id_format(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(
                f"'{v}' is not a valid id; use lowercase letters, digits and single '-' "
                "(e.g. 'ne-employment-support')"
            )
        return v

    @model_validator(mode="after")
    def _treatment_given(self) -> PilotSpec:
        if self.assignment is not None:
            return self._treatment_from_assignment()
        if self.treatment.form == "planned" and not (
            self.status == "planned" and self.design.power.treated is not None
        ):
            raise ValueError(
                "treatment: no treatment given; add 'units' with 'start', 'adoption' or "
                "'column' (a planned pilot may instead give design.power.treated, the number "
                "of units it will treat, to plan its power)"
            )
        return self

    def _treatment_from_assignment(self) -> PilotSpec:
        tr = self.treatment
        if tr.form != "planned":
            keys = {"common": "units and start", "adoption": "adoption", "column": "column"}
            raise ValueError(
                f"treatment: treatment.{keys[tr.form]} and assignment both say who is treated; "
                "a randomised pilot takes its treated units from the allocation drawn by "
                f"assignment: remove treatment.{keys[tr.form].replace(' and ', ' and treatment.')}"
            )
        if tr.eligible is not None:
            raise ValueError(
                "treatment: treatment.eligible is given with assignment; list the eligible "
                "units under assignment.eligible instead"
            )
        if isinstance(tr.comparison, list):
            raise ValueError(
                "treatment: treatment.comparison lists units, but in a randomised pilot the "
                "comparison units are the ones the allocation leaves untreated; remove it"
            )
        return self

    @model_validator(mode="after")
    def _outcomes_unique(self) -> PilotSpec:
        cols = [o.column for o in self.outcomes]
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise ValueError(f"outcome column(s) listed twice: {', '.join(dupes)}; list each once")
        return self

    @property
    def primary_outcomes(self) -> list[OutcomeSpec]:
        """Primary outcomes; if none is marked primary, the first outcome is."""
        marked = [o for o in self.outcomes if o.primary]
        return marked or self.outcomes[:1]

    def plan(self) -> dict[str, Any]:
        """The analysis plan covered by the plan hash: everything but status and contact details."""
        out = self.model_dump(mode="json", exclude={"status", "contact", "summary", "partners"})
        # keys added after plans were first hashed are left out while unset (hash unchanged)
        for key in ("assignment", "cycle", "trial", "costs"):
            if out.get(key) is None:
                out.pop(key, None)
        if not out.get("frameworks"):
            out.pop("frameworks", None)
        return out
