"""Diagnostics: robustness checks, sensitivity to parallel-trend violations, Goodman-Bacon decomposition, evidence strength."""
