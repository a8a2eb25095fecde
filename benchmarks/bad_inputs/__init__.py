"""The bad inputs benchmark.

Run its modules from the repository root: ``python -m benchmarks.bad_inputs.<module>``.
"""
