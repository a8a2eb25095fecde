"""The stream benchmark.

Run its modules from the repository root: ``python -m benchmarks.stream.<module>``.
"""
