"""Training deep (PyTorch) models: :mod:`~hypnoscope.training.loop` (``train_model``, the
phased loop), :mod:`~hypnoscope.training.phases`, :mod:`~hypnoscope.training.losses`,
:mod:`~hypnoscope.training.checkpoints`, :mod:`~hypnoscope.training.distributed`,
:mod:`~hypnoscope.training.precision`, :mod:`~hypnoscope.training.validation`; the
windows they train on (:mod:`~hypnoscope.training.sequences`, NumPy only) and their
augmentations (:mod:`~hypnoscope.training.augment`)."""
