"""Diagnostics: robustness checks and sensitivity to parallel-trend violations."""
