"""hypnoscope's benchmarks: one package per benchmark, results in ``benchmarks/results``.

Every benchmark runs as a module from the repository root, so that it finds the shared
helpers of :mod:`benchmarks.common` (and a sibling benchmark's code) by a plain import::

    python -m benchmarks.real_features.run --max-folds 1 --no-leaky --name smoke

Each module's docstring gives its full command.
"""
