"""Stagers side by side on simulated nights of every montage.

Run from the repository root: ``python -m benchmarks.peers.run``.
"""
