"""The amplitude benchmark: the same simulated night staged at several amplitudes.

Run it from the repository root: ``python -m benchmarks.amplitude.run``.
"""
