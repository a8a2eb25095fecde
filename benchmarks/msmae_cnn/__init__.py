"""The msmae cnn benchmark.

Run its modules from the repository root: ``python -m benchmarks.msmae_cnn.<module>``.
"""
