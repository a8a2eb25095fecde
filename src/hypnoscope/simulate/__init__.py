"""Realistic whole-night PSG simulator (Sleep-EDF layout).

Main entry points:

- :func:`simulate_night` - one night of EEG Fpz-Cz / Pz-Oz, horizontal EOG and
  submental EMG that follows a hypnogram (an :class:`mne.io.RawArray`);
- :func:`write_sleepedf_pair` - ``<ID>-PSG.edf`` + ``<ID>-Hypnogram.edf``;
  :func:`write_shhs_pair` - ``shhs1-NNNNNN.edf`` + ``shhs1-NNNNNN-nsrr.xml`` (the SHHS
  channel set; the file layouts are :data:`LAYOUTS`);
- :data:`MONTAGES` - the simulated channel sets: ``sleep-edf`` (Fpz-Cz, Pz-Oz),
  ``aasm`` (F4-M1, C4-M1, O2-M1, E1-M2, E2-M2, chin EMG at 256 Hz) and ``shhs``
  (C3-A2/C4-A1, EOG(L), EOG(R), EMG at 125 Hz), with derivation-specific physiology;
- :func:`simulate_dataset` - many subjects, each with their own :class:`SubjectTraits`
  (:func:`reuse_or_simulate_dataset` reuses a folder that holds the same dataset);
- :class:`SleepArchitectureModel` / :func:`sample_hypnogram` - stage sequences with
  realistic, time-of-night dependent architecture;
- :func:`latent_mixture` - the scorer-disagreement model: the signals follow a latent
  physiological state that differs from the scored label where human scorers disagree
  (strength ``difficulty``, 0 = off).

The physiology follows the AASM scoring manual; see :mod:`.physiology` for details.

Modules: :mod:`.night` (one night), :mod:`.physiology` (the signal generator),
:mod:`.montages` (channel sets and derivations), :mod:`.traits` (subjects),
:mod:`.architecture` (stage sequences), :mod:`.latent` (scorer disagreement) and
:mod:`.files` (file pairs and datasets).
"""

from hypnoscope.simulate.architecture import SleepArchitectureModel, sample_hypnogram
from hypnoscope.simulate.files import (
    LAYOUTS,
    emg_envelope,
    reuse_or_simulate_dataset,
    simulate_dataset,
    write_shhs_pair,
    write_sleepedf_pair,
)
from hypnoscope.simulate.latent import latent_mixture
from hypnoscope.simulate.montages import MONTAGES
from hypnoscope.simulate.night import DEFAULT_DIFFICULTY, MODES, simulate_night, simulate_signals
from hypnoscope.simulate.traits import SubjectTraits

__all__ = [
    "DEFAULT_DIFFICULTY",
    "LAYOUTS",
    "MODES",
    "MONTAGES",
    "SleepArchitectureModel",
    "SubjectTraits",
    "emg_envelope",
    "latent_mixture",
    "reuse_or_simulate_dataset",
    "sample_hypnogram",
    "simulate_dataset",
    "simulate_night",
    "simulate_signals",
    "write_shhs_pair",
    "write_sleepedf_pair",
]
