"""The real accuracy benchmark.

Run its modules from the repository root: ``python -m benchmarks.real_accuracy.<module>``.
"""
