"""The pilot file's ``assignment:`` key: how the pilot's units are randomised.

A randomised pilot declares its eligible units, a scheme and a seed; ``pilotlab randomise`` and
the data loader draw the allocation from them (:func:`pilotlab.data.allocation.draw`), so the
treated units (and, for a stepped roll-out, their start periods) are never written by hand.

Schemes:

- ``complete``: ``treated`` units per arm drawn at random from the eligible units;
- ``stratified``: the same within each stratum (``strata``: columns of the data, or a mapping
  of stratum name to unit ids); ``treated`` is shared between strata in proportion to their size;
- ``pairs``: units matched in pairs on pre-period values of ``pairs_on``, one of each pair
  treated (two arms only);
- ``rerandomise``: complete (or, with ``strata``, stratified) draws repeated until the balance
  criterion holds (``balance``: largest absolute standardised difference on named variables);
- ``stepped``: every eligible unit is randomised into ``waves``, each with its start period and
  size (within strata when ``strata`` is given); units in no wave stay untreated.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "SCHEMES",
    "Assignment",
    "AssignmentSpec",
    "BalanceSpec",
    "EligibleColumn",
    "WaveSpec",
]

Scheme = Literal["complete", "stratified", "pairs", "rerandomise", "stepped"]
SCHEMES: tuple[str, ...] = Scheme.__args__  # type: ignore[attr-defined]

#: Largest seed accepted (as ``design.inference.seed``).
MAX_SEED = 2**53
#: Most candidate allocations re-randomisation may draw.
MAX_DRAWS = 100_000_000


def _fail(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error reported under ``loc`` (below ``assignment``) with ``message``."""
    return ValidationError.from_exception_data(
        "AssignmentSpec",
        [
            {
                "type": "value_error",
                "loc": loc,
                "input": value,
                "ctx": {"error": ValueError(message)},
            }
        ],
    )


def _as_text(value: Any) -> Any:
    """Periods and unit ids are text; YAML may read them as numbers or dates."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        raise ValueError(
            f"found the number {value!r}, which does not say how the id is written; "
            "put it in quotes, exactly as in the data"
        )
    return str(value)


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )


class BalanceSpec(_Model):
    """Re-randomisation's acceptance rule: every absolute standardised difference (each arm
    against control, each variable) at most ``max_std_diff``; at most ``max_draws`` tried."""

    on: list[str] | None = Field(
        None,
        description="Variables (pre-period means of data columns); default: the outcomes and "
        "design.covariates.",
    )
    max_std_diff: float = Field(gt=0, le=10)
    max_draws: int = Field(100_000, ge=1, le=MAX_DRAWS)

    @field_validator("on")
    @classmethod
    def _on_given(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("the list is empty; name the variables to balance or leave it out")
        if v is not None and len(set(v)) < len(v):
            raise ValueError("a variable is listed twice; list each once")
        return v


class WaveSpec(_Model):
    """One wave of a stepped roll-out: its name, first treated period and number of units."""

    name: str | None = Field(None, min_length=1)
    start: str = Field(min_length=1)
    units: int = Field(ge=1, le=10_000_000)

    _start_text = field_validator("start", mode="before")(classmethod(lambda cls, v: _as_text(v)))


class EligibleColumn(_Model):
    """Eligible units read from a 0/1 column of the data (1 = eligible)."""

    column: str = Field(min_length=1)


class AssignmentSpec(_Model):
    """How the pilot's units are randomised (see the module docstring for the schemes)."""

    scheme: Scheme
    seed: int = Field(ge=0, le=MAX_SEED, description="Random seed of the draw (required).")
    treated: int | dict[str, int] | None = Field(
        None,
        description="Units per treated arm (one number for every arm, or arm name to number); "
        "not used by pairs and stepped.",
    )
    arms: list[str] = Field(
        default_factory=lambda: ["control", "treated"],
        description="Arm names, control first (default: control and one treated arm).",
    )
    start: str | None = Field(
        None, description="First treated period (every scheme but stepped, which uses waves)."
    )
    strata: list[str] | dict[str, list[str]] | None = Field(
        None, description="Columns of the data, or stratum name to the unit ids in it."
    )
    pairs_on: list[str] | None = Field(
        None, description="Pre-period outcomes and covariates the pairs are matched on."
    )
    balance: BalanceSpec | None = None
    waves: list[WaveSpec] | None = None
    eligible: Literal["all"] | list[str] | EligibleColumn = Field(
        "all", description="all, a list of unit ids, or {column: NAME} (a 0/1 column)."
    )

    _start_text = field_validator("start", mode="before")(classmethod(lambda cls, v: _as_text(v)))

    @field_validator("eligible", mode="before")
    @classmethod
    def _eligible_text(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_as_text(u) for u in v]
        if not (v == "all" or isinstance(v, dict)):
            raise ValueError(
                f"found {v!r}; write all, a list of unit ids, or {{column: NAME}} (a column of "
                "the data that is 1 for eligible units and 0 for the others)"
            )
        return v

    @field_validator("treated", mode="before")
    @classmethod
    def _treated_number(cls, v: Any) -> Any:
        if v is None or isinstance(v, dict):
            return v
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
            raise ValueError(
                f"found {v!r}; give the number of units to treat in each arm (e.g. treated: "
                "12), or a number per arm (treated: {text: 12, letter: 12})"
            )
        return int(v)

    @field_validator("strata", mode="before")
    @classmethod
    def _strata_text(cls, v: Any) -> Any:
        if isinstance(v, str):  # one column named on its own
            return [v]
        if v is not None and not isinstance(v, list | dict):
            raise ValueError(
                f"found {v!r}; name the stratum columns (strata: [region]) or map each "
                "stratum to its unit ids"
            )
        if isinstance(v, dict):
            return {
                str(k): [_as_text(u) for u in units] if isinstance(units, list) else units
                for k, units in v.items()
            }
        return v

    @field_validator("arms")
    @classmethod
    def _arms_named(cls, v: list[str]) -> list[str]:
        if len(v) < 2:
            raise ValueError(
                f"found {len(v)} arm(s); list the control arm first and at least one other"
            )
        if any(not a.strip() for a in v):
            raise ValueError("an arm name is empty; name every arm")
        if len(set(v)) < len(v):
            raise ValueError("an arm is listed twice; give each arm its own name")
        return v

    @field_validator("eligible")
    @classmethod
    def _eligible_listed(cls, v: Any) -> Any:
        if isinstance(v, list):
            if not v:
                raise ValueError("the list is empty; list the eligible units or write 'all'")
            dupes = sorted({u for u in v if v.count(u) > 1})
            if dupes:
                raise ValueError(f"unit(s) listed twice: {', '.join(dupes[:5])}; list each once")
        return v

    @model_validator(mode="after")
    def _scheme_keys(self) -> AssignmentSpec:
        s = self.scheme
        arms = self.arms
        if s in ("pairs", "stepped"):
            if self.treated is not None:
                how = "one unit of each pair" if s == "pairs" else "the waves' sizes"
                raise _fail(
                    ("treated",),
                    f"scheme {s} treats {how}; remove assignment.treated",
                    self.treated,
                )
        elif self.treated is None:
            raise _fail(
                ("treated",),
                f"scheme {s} needs the number of units to treat per arm; add "
                "assignment.treated (e.g. treated: 12)",
                None,
            )
        if isinstance(self.treated, int) and self.treated < 1:
            raise _fail(("treated",), f"found {self.treated}; treat at least 1 unit", self.treated)
        if isinstance(self.treated, dict):
            named = set(self.treated)
            wanted = set(arms[1:])
            if named != wanted:
                raise _fail(
                    ("treated",),
                    f"found arms {', '.join(sorted(named)) or '(none)'}; give a number for "
                    f"every treated arm: {', '.join(arms[1:])} (the control arm, {arms[0]}, "
                    "takes the rest)",
                    self.treated,
                )
            bad = [a for a, n in self.treated.items() if n < 1]
            if bad:
                raise _fail(("treated", bad[0]), "treat at least 1 unit in every arm", self.treated)
        if s == "stepped":
            if not self.waves:
                raise _fail(
                    ("waves",),
                    "scheme stepped needs waves: a list of {name, start, units}, one per wave",
                    self.waves,
                )
            if self.start is not None:
                raise _fail(
                    ("start",),
                    "a stepped roll-out starts each wave at its own period; remove "
                    "assignment.start and give each wave its start",
                    self.start,
                )
            if len(arms) != 2:
                raise _fail(
                    ("arms",),
                    "a stepped roll-out has one intervention; leave out assignment.arms",
                    arms,
                )
            names = self.wave_names
            if len(set(names)) < len(names):
                raise _fail(("waves",), "two waves share a name; name each wave once", names)
            starts = [w.start for w in self.waves]
            if len(set(starts)) < len(starts):
                raise _fail(
                    ("waves",),
                    "two waves share a start period; merge them into one wave",
                    starts,
                )
        else:
            if self.waves is not None:
                raise _fail(
                    ("waves",), f"waves belong to scheme stepped (found {s}); remove them", None
                )
            if self.start is None:
                raise _fail(
                    ("start",),
                    "add the first treated period (assignment.start, e.g. start: 2025Q1)",
                    None,
                )
        if s == "stratified" and not self.strata:
            raise _fail(
                ("strata",),
                "scheme stratified needs strata: columns of the data (strata: [region]) or a "
                "mapping of stratum name to unit ids",
                self.strata,
            )
        if s in ("complete", "pairs") and self.strata is not None:
            why = "use scheme stratified" if s == "complete" else "the pairs are the strata"
            raise _fail(("strata",), f"scheme {s} has no strata ({why}); remove strata", None)
        if s == "pairs":
            if not self.pairs_on:
                raise _fail(
                    ("pairs_on",),
                    "scheme pairs needs pairs_on: the pre-period outcomes or covariates the "
                    "pairs are matched on",
                    self.pairs_on,
                )
            if len(arms) != 2:
                raise _fail(
                    ("arms",),
                    f"pairs have two units, one per arm; found {len(arms)} arms",
                    arms,
                )
        elif self.pairs_on is not None:
            raise _fail(("pairs_on",), f"pairs_on belongs to scheme pairs (found {s})", None)
        if s == "rerandomise" and self.balance is None:
            raise _fail(
                ("balance",),
                "scheme rerandomise needs its acceptance rule, e.g. balance: {on: [rate], "
                "max_std_diff: 0.1}",
                None,
            )
        if s != "rerandomise" and self.balance is not None:
            raise _fail(("balance",), f"balance belongs to scheme rerandomise (found {s})", None)
        if isinstance(self.strata, list):
            if not self.strata:
                raise _fail(("strata",), "the list is empty; name the stratum columns", [])
            if len(set(self.strata)) < len(self.strata):
                raise _fail(("strata",), "a column is listed twice; list each once", self.strata)
        if isinstance(self.strata, dict):
            seen: dict[str, str] = {}
            for name, units in self.strata.items():
                if not units:
                    raise _fail(("strata", name), "the stratum lists no units", units)
                for u in units:
                    if u in seen:
                        raise _fail(
                            ("strata", name),
                            f"unit '{u}' is also in stratum '{seen[u]}'; a unit belongs to "
                            "one stratum",
                            units,
                        )
                    seen[u] = name
        return self

    # ------------------------------------------------------------------ derived
    @property
    def wave_names(self) -> list[str]:
        """Names of the waves (``wave 1``, ``wave 2``... where not named)."""
        return [w.name or f"wave {i + 1}" for i, w in enumerate(self.waves or [])]

    @property
    def groups(self) -> tuple[str, ...]:
        """Name of every allocation code: code 0 is the control arm (for stepped: units in no
        wave, not treated within the pilot), code ``k`` the ``k``-th arm or wave."""
        if self.scheme == "stepped":
            return ("not treated", *self.wave_names)
        return tuple(self.arms)

    def arm_sizes(self, n_eligible: int) -> list[int]:
        """Units in each non-control code (arm or wave), in code order."""
        if self.scheme == "stepped":
            return [w.units for w in self.waves or []]
        if self.scheme == "pairs":
            return [n_eligible // 2]
        if isinstance(self.treated, dict):
            return [self.treated[a] for a in self.arms[1:]]
        assert self.treated is not None
        return [int(self.treated)] * (len(self.arms) - 1)

    @property
    def stratum_columns(self) -> list[str]:
        """Data columns that define the strata (none when strata are listed by unit)."""
        return list(self.strata) if isinstance(self.strata, list) else []


#: The name the pilot-file model uses.
Assignment = AssignmentSpec
