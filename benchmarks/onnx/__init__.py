"""The onnx benchmark.

Run its modules from the repository root: ``python -m benchmarks.onnx.<module>``.
"""
