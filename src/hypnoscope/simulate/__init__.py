"""Realistic whole-night PSG simulator (Sleep-EDF layout).

Main entry points:

- :func:`simulate_night` - one night of EEG Fpz-Cz / Pz-Oz, horizontal EOG and
  submental EMG that follows a hypnogram (an :class:`mne.io.RawArray`);
- :func:`write_sleepedf_pair` - ``<ID>-PSG.edf`` + ``<ID>-Hypnogram.edf``;
- :func:`simulate_dataset` - many subjects, each with their own :class:`SubjectTraits`;
- :class:`SleepArchitectureModel` / :func:`sample_hypnogram` - stage sequences with
  realistic, time-of-night dependent architecture.

The physiology follows the AASM scoring manual; see :mod:`.physiology` for details.
"""

from .architecture import SleepArchitectureModel, sample_hypnogram
from .files import emg_envelope, simulate_dataset, write_sleepedf_pair
from .night import MODES, simulate_night, simulate_signals
from .traits import SubjectTraits

__all__ = [
    "MODES",
    "SleepArchitectureModel",
    "SubjectTraits",
    "emg_envelope",
    "sample_hypnogram",
    "simulate_dataset",
    "simulate_night",
    "simulate_signals",
    "write_sleepedf_pair",
]
