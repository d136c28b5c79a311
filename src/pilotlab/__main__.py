"""``python -m pilotlab`` runs the command line."""

from pilotlab.cli import main

main()
