"""The ssnet real benchmark.

Run its modules from the repository root: ``python -m benchmarks.ssnet_real.<module>``.
"""
