"""Adapting the shipped default to a new lab (``python -m benchmarks.adapt.run``)."""
