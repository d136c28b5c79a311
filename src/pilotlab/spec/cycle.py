"""The pilot file's ``cycle:`` key: the earlier pilot this one follows in a test-and-learn chain.

::

    cycle:
      follows: schools-reading-2024     # the id of the pilot this cycle learns from
      change: "Sessions moved from after school to the school day"

The registry keeps the chain (each registration or amendment that sets or changes ``cycle``
appends a link); the report shows the earlier cycles' results and what changed, and the
portfolio shows each chain in order.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CycleSpec"]

_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class CycleSpec(BaseModel):
    """One cycle of a test-and-learn series: the pilot it follows and what was changed."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )

    follows: str = Field(description="Id of the earlier pilot (cycle) this one follows.")
    change: str = Field(
        min_length=1,
        max_length=2000,
        description="What changed since the earlier cycle, in plain words.",
    )

    @field_validator("follows")
    @classmethod
    def _id_format(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(
                f"'{v}' is not a pilot id; give the id of the earlier pilot as registered "
                "(lowercase letters, digits and single '-', e.g. 'schools-reading-2024')"
            )
        return v
