"""Small shared helpers, below every other package.

Modules: :mod:`~hypnoscope.utils.files` (atomic writes, output paths checked before any
work, output sets), :mod:`~hypnoscope.utils.runtime` (seeding, progress bars,
``KEY=VALUE`` options), :mod:`~hypnoscope.utils.arrays` (runs of True, float arrays,
epochs as views) and :mod:`~hypnoscope.utils.batch` (the batch engine of per-recording
work: local processes or a Dask cluster).
"""
