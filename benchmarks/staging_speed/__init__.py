"""The staging speed benchmark.

Run its modules from the repository root: ``python -m benchmarks.staging_speed.<module>``.
"""
