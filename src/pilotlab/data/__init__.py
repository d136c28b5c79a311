"""Reading and checking data, period parsing and the analysis :class:`Panel`."""

from pilotlab.data.load import file_sha256, load_panel, panel_from_frame, read_table
from pilotlab.data.panel import NEVER, MissingSummary, Panel, UnitFlow
from pilotlab.data.periods import PeriodIndex, parse_periods

__all__ = [
    "NEVER",
    "MissingSummary",
    "Panel",
    "PeriodIndex",
    "UnitFlow",
    "file_sha256",
    "load_panel",
    "panel_from_frame",
    "parse_periods",
    "read_table",
]
