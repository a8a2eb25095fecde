"""The simulator realism benchmark.

Run its modules from the repository root: ``python -m benchmarks.simulator_realism.<module>``.
"""
