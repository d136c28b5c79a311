"""The evaluation report: document model, charts, number formatting and rendering.

Evaluation --build--> ReportDocument --render (templates/)--> report.html (+ tables/*.csv)

Public API: :func:`build`, :func:`render_report`, :func:`render_portfolio`,
:func:`portfolio_from_paths`.
"""

from pilotlab.report.build import build
from pilotlab.report.model import ReportDocument
from pilotlab.report.portfolio import portfolio_from_paths, render_portfolio
from pilotlab.report.render import render_report

__all__ = ["ReportDocument", "build", "portfolio_from_paths", "render_portfolio", "render_report"]
