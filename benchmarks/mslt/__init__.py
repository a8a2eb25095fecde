"""The nap-study (MSLT / MWT) benchmark: ``python -m benchmarks.mslt.run``."""
