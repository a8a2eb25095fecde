"""The real features benchmark.

Run its modules from the repository root: ``python -m benchmarks.real_features.<module>``.
"""
