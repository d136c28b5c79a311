"""Plain-English assumptions of the designs only some estimators read: treatment that switches
off (``switching``) and eligible / ineligible groups within areas (``groups``). The report asks
the estimator's capabilities, never its name."""

from __future__ import annotations

from pilotlab.catalogue import Capabilities

__all__ = ["design_assumptions"]


def design_assumptions(caps: Capabilities | None, units_word: str) -> list[str]:
    """Extra assumptions to list for an estimator with these capabilities."""
    if caps is None:
        return []
    out: list[str] = []
    if caps.switching:
        out.append(
            f"Switching on or off: {units_word} that start or stop the pilot are compared with "
            f"{units_word} that had the same status at the start of the data and had not "
            "changed yet; without the change, both would have moved alike."
        )
        out.append(
            "The effect of a switch may build up or fade over the periods after it; each "
            "period after a switch is estimated separately, and the summary is the effect per "
            "period of changed treatment."
        )
    if caps.groups:
        out.append(
            "Eligible and ineligible people: without the pilot, the gap between eligible and "
            f"ineligible people would have changed by the same amount in pilot {units_word} as "
            f"in comparison {units_word}. Anything else that changed in an area affects both "
            "groups alike, so it cancels out."
        )
        out.append("The pilot did not change outcomes for the ineligible people in pilot areas.")
    return out
