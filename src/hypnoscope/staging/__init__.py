"""Staging: recordings in, hypnograms and output sets out.

Modules
-------
- :mod:`~hypnoscope.staging.pipeline`: :func:`stage` and :func:`stage_recording` (one
  recording, as a chain of named steps), :func:`choose_model`, :class:`StagingResult`,
  :class:`SignalQualityError`;
- :mod:`~hypnoscope.staging.model_input`: the input kinds of models (``"bandpower"``,
  ``"signals"``), computing a model's input from a recording, and the prediction step;
- :mod:`~hypnoscope.staging.channel_setups`: the channel setups of the shipped models;
- :mod:`~hypnoscope.staging.outputs`: :func:`stage_file` (one file's output set), output
  names and the complete-output-set check of resumed batches;
- :mod:`~hypnoscope.staging.inputs`: finding recordings (folders, globs, BIDS), pairing
  references, distinct output names;
- :mod:`~hypnoscope.staging.batch`: :func:`stage_folder` (a resumable batch of
  recordings) on the batch engine (local processes or a Dask cluster).
"""

from hypnoscope.staging.batch import stage_folder
from hypnoscope.staging.outputs import stage_file
from hypnoscope.staging.pipeline import (
    SignalQualityError,
    StagingResult,
    choose_model,
    stage,
    stage_recording,
)

__all__ = ["SignalQualityError", "StagingResult", "choose_model", "stage", "stage_file",
           "stage_folder", "stage_recording"]
