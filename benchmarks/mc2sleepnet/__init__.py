"""The mc2sleepnet benchmark.

Run its modules from the repository root: ``python -m benchmarks.mc2sleepnet.<module>``.
"""
