"""The metric and framework models (pydantic, frozen) and the rules that compare units."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CODE",
    "METRIC_REF",
    "Framework",
    "Metric",
    "MonetaryValue",
    "same_unit",
    "split_ref",
]

#: A framework id or metric code: lowercase letters and digits, joined by single '-' or '_'.
CODE = r"^[a-z0-9]+([_-][a-z0-9]+)*$"
#: How an outcome names a metric: ``<framework>/<code>``.
METRIC_REF = r"^[a-z0-9]+([_-][a-z0-9]+)*/[a-z0-9]+([_-][a-z0-9]+)*$"
_REF = re.compile(METRIC_REF)

#: Spellings of one unit that mean the same thing (compared after :func:`_norm`).
_SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset({"percent", "%", "per cent", "percentage", "percentage points", "pp", "% points"}),
    frozenset({"count", "number", "people", "persons"}),
    frozenset({"gbp", "£", "pounds"}),
    frozenset({"days", "day"}),
)


def _norm(text: str) -> str:
    return " ".join(text.lower().replace(",", "").split())


def same_unit(a: str, b: str, aliases: tuple[str, ...] = ()) -> bool:
    """Whether two spellings of a unit agree (case, spaces, thousands commas and the common
    synonyms such as ``%`` / ``percent`` / ``percentage points`` aside)."""
    na, nb = _norm(a), _norm(b)
    if na == nb or nb in {_norm(x) for x in aliases}:
        return True
    return any(na in group and nb in group for group in _SYNONYMS)


def split_ref(ref: str) -> tuple[str, str]:
    """``"local/employment_rate"`` -> ``("local", "employment_rate")``; ValueError otherwise."""
    if not _REF.match(ref):
        raise ValueError(
            f"'{ref}' is not a metric reference; write <framework>/<code>, e.g. "
            "local/claimant_rate (`pilotlab frameworks` lists them)"
        )
    framework, code = ref.split("/")
    return framework, code


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )


class MonetaryValue(_Model):
    """What one unit of a metric is worth, from a published source."""

    value: float = Field(gt=0, description="Value of one unit of the metric.")
    currency: Literal["GBP"] = Field("GBP", description="Only pounds sterling (GBP) for now.")
    price_year: int = Field(ge=1900, le=2200, description="The prices the value is given in.")
    per: str = Field(min_length=1, description="What one unit is, e.g. 'one admission avoided'.")
    source: str = Field(min_length=1, description="The published source of the value.")

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v


class Metric(_Model):
    """One metric of a framework."""

    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    unit: str = Field(min_length=1, description="Unit of the metric, e.g. percent, days.")
    unit_aliases: tuple[str, ...] = ()
    better: Literal["higher", "lower"]
    source: str = Field(min_length=1, description="Where the metric is published or defined.")
    policy_area: str | None = None
    monetary_value: MonetaryValue | None = None
    # set by the framework that holds the metric
    framework: str = ""
    framework_version: str = ""

    @property
    def ref(self) -> str:
        """``<framework>/<code>``."""
        return f"{self.framework}/{self.code}"

    def agrees_with_unit(self, unit: str) -> bool:
        """Whether an outcome's ``units`` text names this metric's unit."""
        return same_unit(self.unit, unit, self.unit_aliases)

    def to_dict(self) -> dict[str, Any]:
        """What an evidence record or a synthesis says about the metric."""
        mv = self.monetary_value
        return {
            "ref": self.ref,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "code": self.code,
            "name": self.name,
            "unit": self.unit,
            "better": self.better,
            "source": self.source,
            "monetary_value": mv.model_dump(mode="json") if mv is not None else None,
        }


class Framework(_Model):
    """A versioned list of metrics."""

    framework: str = Field(pattern=CODE, description="The framework's id, e.g. local.")
    version: str = Field(min_length=1, description="The framework's version, e.g. 1.0.0.")
    title: str = Field(min_length=1)
    description: str | None = None
    publisher: str | None = None
    metrics: tuple[Metric, ...] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @model_validator(mode="before")
    @classmethod
    def _stamp(cls, data: Any) -> Any:
        # each metric knows its framework and version (they are not written per metric)
        if isinstance(data, dict) and isinstance(data.get("metrics"), list):
            fid, ver = data.get("framework"), data.get("version")
            metrics = []
            for m in data["metrics"]:
                if isinstance(m, dict):
                    for key in ("framework", "framework_version"):
                        if key in m:
                            raise ValueError(
                                f"metric '{m.get('code')}' sets '{key}'; it comes from the "
                                "framework itself: remove it from the metric"
                            )
                    m = {**m, "framework": fid if isinstance(fid, str) else "",
                         "framework_version": str(ver) if ver is not None else ""}  # fmt: skip
                metrics.append(m)
            data = {**data, "metrics": metrics}
        return data

    @model_validator(mode="after")
    def _codes_unique(self) -> Framework:
        codes = [m.code for m in self.metrics]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"metric code(s) listed twice: {', '.join(dupes)}; list each once")
        return self

    def metric(self, code: str) -> Metric | None:
        """The metric with this code, or ``None``."""
        return next((m for m in self.metrics if m.code == code), None)
