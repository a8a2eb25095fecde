"""The foundation memory benchmark.

Run its modules from the repository root: ``python -m benchmarks.foundation_memory.<module>``.
"""
