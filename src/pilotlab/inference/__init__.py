"""Inference for pilot estimates: wild cluster bootstrap, randomisation inference, multiple
testing adjustments and the rule that chooses a method for a design."""
