"""The cohort benchmark.

Run its modules from the repository root: ``python -m benchmarks.cohort.<module>``.
"""
