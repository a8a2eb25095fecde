"""The ssnet simulated benchmark.

Run its modules from the repository root: ``python -m benchmarks.ssnet_simulated.<module>``.
"""
