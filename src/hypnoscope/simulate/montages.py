"""Montages of the PSG simulator: which derivations a simulated night has.

A *montage* (:data:`MONTAGES`) is the physiology side of a simulated recording: its channel
set, the rate it is simulated at and how each derivation mixes the simulator's sources
(the *layout*, :data:`hypnoscope.simulate.files.LAYOUTS`, is the file side: naming and
annotation format).

- ``"sleep-edf"``: ``EEG Fpz-Cz``, ``EEG Pz-Oz``, ``EOG horizontal``, ``EMG submental`` at
  100 Hz, as the generator composes them (:func:`.physiology.generate_night`);
- ``"aasm"``: the AASM recommended montage ``F4-M1``, ``C4-M1``, ``O2-M1``, ``E1-M2``,
  ``E2-M2`` and chin EMG ``Chin1-Chin2`` (a waveform) at 256 Hz;
- ``"shhs"``: the SHHS channels ``EEG(sec)`` (C3-A2), ``EEG`` (C4-A1), ``EOG(L)``,
  ``EOG(R)`` and ``EMG`` at 125 Hz.

Derivations differ as on real scalps (:data:`DERIVATIONS`, weights of each source):
frontal derivations carry most of the delta background and K-complexes, central ones
the spindles and vertex sharp waves, occipital ones the alpha rhythm; mastoid-referenced
derivations are larger than the bipolar Sleep-EDF ones. Horizontal eye movements have
opposite polarity on E1 (left outer canthus) and E2 (right), blinks the same; both pick
up frontal EEG. Each derivation gets its own electrode drift and amplifier noise, and
the two hemispheres of the SHHS montage a partly independent background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hypnoscope.simulate.physiology import NightSignals, _smooth_noise
from hypnoscope.simulate.traits import SubjectTraits


@dataclass(frozen=True)
class Montage:
    """A simulated channel set: ``channels`` are ``(label, type)`` pairs (``type`` as
    MNE's: eeg, eog, emg) and ``sfreq`` the rate the night is simulated at."""

    name: str
    sfreq: float
    channels: tuple[tuple[str, str], ...]
    description: str


#: Weights of the generator's sources per derivation (µV of source per µV of channel).
#: ``src@trait`` multiplies the weight by that :class:`~.traits.SubjectTraits` value
#: (eye-to-EEG and EEG-to-eye leakage); ``-eh`` is the horizontal eye signal inverted.
DERIVATIONS: dict[str, dict[str, float]] = {
    "F4-M1": {"bg_front": 1.35, "bg_post": 0.3, "kcomplex": 1.45, "vertex": 0.9,
              "spindle": 0.7, "sawtooth": 1.1, "alpha": 0.3, "movement": 1.0,
              "ev@blink_leak": 0.8, "eh@eog_leak": 0.6},
    "C4-M1": {"bg_front": 0.85, "bg_post": 0.8, "kcomplex": 1.15, "vertex": 1.3,
              "spindle": 1.35, "sawtooth": 1.25, "alpha": 0.55, "movement": 0.9,
              "ev@blink_leak": 0.3, "eh@eog_leak": 0.3},
    "O2-M1": {"bg_front": 0.3, "bg_post": 1.35, "kcomplex": 0.45, "vertex": 0.4,
              "spindle": 0.6, "sawtooth": 0.6, "alpha": 1.45, "movement": 0.7},
    "C3-A2": {"bg_front": 0.55, "bg_post": 0.5, "bg_other": 0.8, "kcomplex": 1.05,
              "vertex": 1.25, "spindle": 1.3, "sawtooth": 1.2, "alpha": 0.5,
              "movement": 0.9, "ev@blink_leak": 0.3, "eh@eog_leak": 0.3},
    "E1-M2": {"eh": 1.0, "ev": 0.35, "bg_front@eeg_to_eog": 1.4, "eog_bg": 1.0,
              "movement": 0.8},
    "E2-M2": {"-eh": 1.0, "ev": 0.35, "bg_front@eeg_to_eog": 1.4, "eog_bg_other": 1.0,
              "movement": 0.8},
    "chin": {"emg": 1.0},
}

#: The montages; a label's derivation is :data:`CHANNEL_DERIVATION`'s entry, else itself.
MONTAGES: dict[str, Montage] = {m.name: m for m in (
    Montage("sleep-edf", 100.0, (("EEG Fpz-Cz", "eeg"), ("EEG Pz-Oz", "eeg"),
                                 ("EOG horizontal", "eog"), ("EMG submental", "emg")),
            "Sleep-EDF: EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal, EMG submental (100 Hz)"),
    Montage("aasm", 256.0, (("F4-M1", "eeg"), ("C4-M1", "eeg"), ("O2-M1", "eeg"),
                            ("E1-M2", "eog"), ("E2-M2", "eog"), ("Chin1-Chin2", "emg")),
            "AASM recommended: F4-M1, C4-M1, O2-M1, E1-M2, E2-M2, chin EMG (256 Hz)"),
    Montage("shhs", 125.0, (("EEG(sec)", "eeg"), ("EEG", "eeg"), ("EOG(L)", "eog"),
                            ("EOG(R)", "eog"), ("EMG", "emg")),
            "SHHS: EEG(sec) = C3-A2, EEG = C4-A1, EOG(L), EOG(R), EMG (125 Hz)"),
)}
#: Derivation recipe of the labels that are not recipes themselves.
CHANNEL_DERIVATION = {"Chin1-Chin2": "chin", "EMG": "chin", "EEG(sec)": "C3-A2",
                      "EEG": "C4-M1", "EOG(L)": "E1-M2", "EOG(R)": "E2-M2"}
#: Amplifier noise per channel type, relative to the subject's ``noise_uv``.
_NOISE = {"eeg": 1.0, "eog": 1.5, "emg": 0.3}


def _phase_surrogate(x: np.ndarray, fs: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` with the phases of its 4-s short-time Fourier transform randomised: the same
    spectrum at every moment (so the same stage), an independent waveform."""
    from scipy.signal import istft, stft

    nper = int(4 * fs)
    _, _, z = stft(x, fs=fs, nperseg=nper, noverlap=nper // 2)
    z = np.abs(z) * np.exp(2j * np.pi * rng.random(z.shape))
    _, y = istft(z, fs=fs, nperseg=nper, noverlap=nper // 2)
    out = np.zeros_like(x)
    m = min(len(x), len(y))
    out[:m] = y[:m]
    return out


def get_montage(name: str) -> Montage:
    """The :data:`MONTAGES` entry of ``name``; a ``ValueError`` lists them otherwise."""
    if name not in MONTAGES:
        raise ValueError(f"unknown montage {name!r}; expected one of {sorted(MONTAGES)}")
    return MONTAGES[name]


def compose_montage(sig: NightSignals, traits: SubjectTraits, montage: str | Montage,
                    rng: np.random.Generator) -> tuple[list[str], list[str], np.ndarray]:
    """The channels of a montage from a night generated with ``keep_sources=True``.

    Returns
    -------
    names, types : list of str
    data : ndarray (n_channels, n_samples), float32, µV
    """
    m = montage if isinstance(montage, Montage) else get_montage(montage)
    if m.name == "sleep-edf":
        return ([c for c, _ in m.channels], [t for _, t in m.channels],
                np.stack([sig.fpz, sig.pz, sig.eog, sig.emg]))
    src = dict(sig.sources)
    if not src:
        raise ValueError("the night was generated without keep_sources=True")
    n = len(sig.fpz)
    fs = sig.sfreq
    n_sec = int(n // round(fs))
    # a second hemisphere / electrode: the same time-varying (stage) spectrum, its own
    # waveform
    src["bg_other"] = _phase_surrogate(src["bg_front"], fs, rng)
    src["eog_bg_other"] = _phase_surrogate(src["eog_bg"], fs, rng)
    src["-eh"] = -src["eh"]
    centres = (np.arange(n_sec) + 0.5) * fs
    t = np.arange(n, dtype=np.float32)
    data = np.zeros((len(m.channels), n), dtype=np.float32)
    for i, (label, ctype) in enumerate(m.channels):
        recipe = DERIVATIONS[CHANNEL_DERIVATION.get(label, label)]
        x = data[i]
        for key, w in recipe.items():
            name, _, trait = key.partition("@")
            gain = w * (float(getattr(traits, trait)) if trait else 1.0)
            x += np.float32(gain) * src[name]
        if ctype != "emg":  # electrode drift (EEG/EOG)
            x += np.interp(t, centres, _smooth_noise(rng, n_sec, 30) * traits.drift_uv
                           ).astype(np.float32)
        x += rng.standard_normal(n, dtype=np.float32) * np.float32(
            traits.noise_uv * _NOISE[ctype])
    return [c for c, _ in m.channels], [t_ for _, t_ in m.channels], data
