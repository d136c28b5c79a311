"""Diagnostics of the design: Goodman-Bacon decomposition (more to come)."""
