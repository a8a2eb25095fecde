"""Per-subject physiological traits of simulated sleepers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SubjectTraits:
    """Between-subject variability of the simulated physiology.

    All amplitudes are in µV, rates in events per minute of the stage concerned.
    Draw a random subject with :meth:`sample`; every field can also be set by hand.
    """

    alpha_freq: float = 10.0  #: posterior alpha peak frequency (Hz)
    alpha_amp: float = 8.0  #: std of full eyes-closed alpha on Pz-Oz
    eyes_closed_frac: float = 0.3  #: eyes-closed share of wake away from sleep
    spindle_freq: float = 13.0  #: spindle frequency (Hz), 11-16
    spindle_density: float = 4.0  #: spindles per minute of N2
    spindle_amp: float = 16.0  #: peak amplitude of a spindle on Fpz-Cz
    kcomplex_rate: float = 1.2  #: K-complexes per minute of N2
    eeg_gain: float = 1.0  #: overall EEG amplitude factor
    slow_wave_gain: float = 1.0  #: extra factor on N3 amplitude
    emg_level: float = 10.0  #: submental EMG RMS in quiet wake
    eog_gain: float = 1.0  #: eye-movement amplitude factor
    rem_density: float = 2.5  #: rapid-eye-movement bursts per minute of REM
    blink_leak: float = 0.2  #: fraction of a (vertical) blink seen on Fpz-Cz
    eog_leak: float = 0.05  #: fraction of the horizontal eye signal seen on Fpz-Cz
    eeg_to_eog: float = 0.35  #: fraction of frontal EEG picked up by the EOG
    noise_uv: float = 1.0  #: white amplifier noise
    drift_uv: float = 8.0  #: slow electrode drift amplitude
    artifact_rate: float = 0.3  #: movement artefacts per minute of wake
    arousal_rate: float = 0.08  #: arousals per minute of sleep
    bad_segment_prob: float = 0.3  #: probability that a night has bad-signal segments
    emg_n1: float = 0.6  #: N1 EMG tone relative to quiet wake
    emg_n2: float = 0.42  #: N2 EMG tone relative to quiet wake
    emg_n3: float = 0.38  #: N3 EMG tone relative to quiet wake
    emg_rem: float = 0.13  #: REM (atonia) EMG tone relative to quiet wake
    vertex_rate: float = 2.0  #: vertex sharp waves per minute of N1
    sem_rate: float = 5.0  #: slow eye movements per minute of N1
    spectral_sd: float = 0.0  #: sd of the subject's log band-gain offsets (0 = none)
    spectral_seed: int = 0  #: seed of the subject's band-gain offsets

    def spectral_offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """The subject's deviations from the population spectra.

        Returns
        -------
        band_log_offsets : ndarray (5 stages, 3 channels, 5 bands)
            Added to the natural-log band gains of the background: a part shared by
            all stages (skull, electrode placement) plus a stage-specific part (which
            makes stage signatures differ between subjects).
        std_log_offsets : ndarray (5 stages, 3 channels)
            Natural-log factors on the background amplitude per stage.
        """
        if self.spectral_sd <= 0:
            return np.zeros((5, 3, 5)), np.zeros((5, 3))
        rng = np.random.default_rng([int(self.spectral_seed), 11])
        sd = float(self.spectral_sd)
        shared = rng.normal(0, sd, (1, 3, 5))
        stage = rng.normal(0, 0.6 * sd, (5, 3, 5))
        std = rng.normal(0, 0.5 * sd, (1, 3)) + rng.normal(0, 0.25 * sd, (5, 3))
        return shared + stage, std

    @classmethod
    def sample(cls, rng: np.random.Generator | int | None = None) -> SubjectTraits:
        """Draw one subject from the population distribution (seeded)."""
        rng = np.random.default_rng(rng)

        def ln(mean: float, sd: float) -> float:
            return float(mean * np.exp(sd * rng.standard_normal()))

        return cls(
            alpha_freq=float(np.clip(rng.normal(10.0, 0.8), 8.2, 11.8)),
            alpha_amp=ln(6.5, 0.45),
            eyes_closed_frac=float(rng.uniform(0.1, 0.5)),
            spindle_freq=float(np.clip(rng.normal(13.0, 0.6), 11.5, 14.8)),
            spindle_density=float(np.clip(rng.normal(4.0, 1.5), 1.2, 8.0)),
            spindle_amp=ln(16.0, 0.35),
            kcomplex_rate=float(np.clip(rng.normal(1.2, 0.4), 0.4, 2.5)),
            eeg_gain=ln(1.0, 0.25),
            slow_wave_gain=ln(1.0, 0.2),
            emg_level=ln(10.0, 0.5),
            eog_gain=ln(1.0, 0.3),
            rem_density=ln(2.5, 0.45),
            blink_leak=float(rng.uniform(0.1, 0.3)),
            eog_leak=float(rng.uniform(0.02, 0.08)),
            eeg_to_eog=float(rng.uniform(0.2, 0.5)),
            noise_uv=float(rng.uniform(0.5, 1.5)),
            drift_uv=float(rng.uniform(3.0, 15.0)),
            artifact_rate=float(rng.uniform(0.1, 0.5)),
            arousal_rate=float(rng.uniform(0.04, 0.12)),
            bad_segment_prob=float(rng.uniform(0.1, 0.4)),
            **cls._sample_stage_traits(rng),
        )

    @staticmethod
    def _sample_stage_traits(rng: np.random.Generator) -> dict[str, float | int]:
        """Per-subject stage signatures: EMG tone per stage, N1 events, spectra."""
        def ln(mean: float, sd: float) -> float:
            return float(mean * np.exp(sd * rng.standard_normal()))

        n1 = float(np.clip(ln(0.6, 0.25), 0.3, 0.95))
        n2 = float(np.clip(ln(0.42, 0.3), 0.2, 0.9 * n1))
        n3 = float(np.clip(n2 * ln(0.9, 0.15), 0.15, n2 * 1.1))
        rem = float(np.clip(ln(0.13, 0.45), 0.04, 0.7 * min(n2, n3)))
        return {"emg_n1": n1, "emg_n2": n2, "emg_n3": n3, "emg_rem": rem,
                "vertex_rate": ln(2.0, 0.45), "sem_rate": ln(5.0, 0.4),
                "spectral_sd": float(rng.uniform(0.12, 0.25)),
                "spectral_seed": int(rng.integers(0, 2**31 - 1))}

    def second_night(self, rng: np.random.Generator | int | None = None) -> SubjectTraits:
        """The same subject on another night: traits perturbed by a few percent."""
        rng = np.random.default_rng(rng)
        changes = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("spectral_seed", "spectral_sd"):
                continue  # the same spectral signature on every night
            if f.name in ("alpha_freq", "spindle_freq"):
                changes[f.name] = float(v + rng.normal(0, 0.1))
            elif f.name in ("eyes_closed_frac", "bad_segment_prob"):
                changes[f.name] = float(np.clip(v + rng.normal(0, 0.05), 0.05, 0.95))
            else:
                changes[f.name] = float(v * np.exp(rng.normal(0, 0.05)))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, float | int]:
        """Traits as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)
