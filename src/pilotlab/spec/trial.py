"""The pilot file's ``trial:`` key: what a randomised pilot records beyond its allocation.

::

    trial:
      received: got_programme     # per row: 1 if the unit had the intervention in that period

``received`` names a column of the data saying what each unit actually got in each period: 0/1
(or true/false) for a pilot with one arm, or the name of the arm received (the control arm's
name for none) when there are several. pilotlab compares it with the allocation: units that got
the intervention without being allocated to it (or before their wave) crossed over; units
allocated to it that never got it did not receive it. Without ``received`` every unit is taken
to have received what it was allocated, and the report says that this was not checked.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TrialSpec"]


class TrialSpec(BaseModel):
    """What a randomised pilot's data say about the intervention actually received."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )

    received: str | None = Field(
        None,
        min_length=1,
        description="Column of what each unit actually received in each period (0/1, or the "
        "arm's name when there are several arms).",
    )
