"""The report's sentence about person-level microdata (``data.layout: microdata``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pilotlab.report.format import fmt_int
from pilotlab.results import DataSummary

__all__ = ["microdata_sentence"]


def microdata_sentence(source: str, data: DataSummary, unit_word: str, units_word: str) -> str:
    """Where the data come from and how many persons and rows they hold, in plain words."""
    micro: Mapping[str, Any] = data.microdata or {}
    persons = micro.get("persons")
    who = f" for {fmt_int(int(persons))} people" if persons else ""
    files = int(micro.get("files", 0) or 0)
    read = f" read from {fmt_int(files)} files" if files > 1 else ""
    per = "person" if micro.get("person_column") else "person (or episode)"
    used = micro.get("rows_used") or {}
    fewer = {o: int(n) for o, n in used.items() if int(n) < data.rows}
    gaps = ""
    if fewer:
        gaps = (
            " "
            + "; ".join(f"{fmt_int(n)} of them have a value of {o}" for o, n in fewer.items())
            + "."
        )
    return (
        f"Source: {source}. The data hold {fmt_int(data.rows)} rows{who}{read}, one per {per} "
        f"and period, in {fmt_int(data.units)} {units_word if data.units != 1 else unit_word} "
        f"over {fmt_int(data.periods)} periods, from {data.first_period} to "
        f"{data.last_period}. Each estimate uses every person's row: pilotlab summarises the "
        f"rows of each {unit_word} and period ({fmt_int(int(micro.get('cells', 0)))} "
        f"{unit_word}-periods) without changing the result.{gaps}"
    )
