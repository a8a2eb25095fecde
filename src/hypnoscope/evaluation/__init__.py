"""Measuring staging: agreement, sleep statistics, subject-wise splits and cross-validation.

- :mod:`~hypnoscope.evaluation.metrics`: epoch-by-epoch agreement (``evaluate``,
  ``compare_hypnograms``, robustness across people);
- :mod:`~hypnoscope.evaluation.sleepstats`: AASM sleep statistics of a hypnogram;
- :mod:`~hypnoscope.evaluation.splits`: subject-wise folds and splits;
- :mod:`~hypnoscope.evaluation.cross_validation`: ``cross_validate``, subject-wise CV
  of a model factory with a resumable per-fold cache;
- :mod:`~hypnoscope.evaluation.nested`: cross-fitted members and a combination chosen on
  their out-of-fold predictions (nested CV);
- :mod:`~hypnoscope.evaluation.probability`: pure operations on stage probabilities
  (soft-vote weights, stage-transition smoothing) shared with the models;
- :mod:`~hypnoscope.evaluation.stretches`: stretches of held-out nights staged as
  recordings of their own.

The package imports nothing at import time; import the modules.
"""
