"""The report's sentence about person-level microdata (``data.layout: microdata``)."""

from __future__ import annotations

from pilotlab.report.format import fmt_int
from pilotlab.results import DataSummary

__all__ = ["microdata_sentence"]


def microdata_sentence(source: str, data: DataSummary, unit_word: str, units_word: str) -> str:
    """Where the data come from and how many persons and rows they hold, in plain words."""
    micro = data.microdata
    if micro is None:
        return f"Source: {source}."
    who = f" for {fmt_int(micro.persons)} people" if micro.persons else ""
    read = f" read from {fmt_int(micro.files)} files" if micro.files > 1 else ""
    per = "person" if micro.person_column else "person (or episode)"
    fewer = {o: int(n) for o, n in micro.rows_used.items() if int(n) < data.rows}
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
        f"rows of each {unit_word} and period ({fmt_int(micro.cells)} "
        f"{unit_word}-periods) without changing the result.{gaps}"
    )
