"""A model of sleep architecture: time-of-night dependent stage transitions.

:class:`SleepArchitectureModel` is a first-order Markov chain over 30-s epochs whose
transition matrix depends on the time since the start of the (cropped) night, in bins of
``bin_hours``. Fitted to real hypnograms it reproduces the classic architecture: a sleep
latency, more N3 in the first cycles, more and longer REM towards the morning.
:meth:`SleepArchitectureModel.default` is fitted to the 54 expert hypnograms of the
Sleep-EDF Expanded sleep-cassette study (Kemp et al. 2000, PhysioNet, ODC-By); its
transition counts are stored in :mod:`._architecture_counts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.stages import STAGES_5

N_STAGES = len(STAGES_5)


@dataclass
class SleepArchitectureModel:
    """Time-binned Markov model of sleep stages.

    Attributes
    ----------
    counts : ndarray (n_bins, 5, 5)
        Transition counts ``from -> to`` per time bin (time since the start of the
        cropped night: ``wake_pad_min`` before sleep onset).
    bin_hours : float
        Width of a time bin; the last bin also covers later times.
    epoch_sec : float
        Epoch length.
    prior : float
        Dirichlet pseudo-count added to every observed-from-stage row.
    """

    counts: np.ndarray
    bin_hours: float = 1.0
    epoch_sec: float = 30.0
    prior: float = 0.1

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=float)
        if self.counts.ndim != 3 or self.counts.shape[1:] != (N_STAGES, N_STAGES):
            raise ValueError(f"counts must have shape (n_bins, 5, 5), got {self.counts.shape}")

    @property
    def n_bins(self) -> int:
        """Number of time bins."""
        return int(self.counts.shape[0])

    @property
    def transition_matrices(self) -> np.ndarray:
        """Row-stochastic transition matrices (n_bins, 5, 5)."""
        c = self.counts + self.prior * (self.counts.sum(axis=2, keepdims=True) > 0)
        # rows never observed in a bin fall back to the pooled matrix
        pooled = self.counts.sum(axis=0) + self.prior
        empty = c.sum(axis=2) == 0
        c[empty] = np.broadcast_to(pooled, c.shape)[empty]
        return c / c.sum(axis=2, keepdims=True)

    @classmethod
    def fit(cls, hypnograms: Iterable, bin_hours: float = 1.0, n_bins: int = 10,
            wake_pad_min: float = 30.0) -> SleepArchitectureModel:
        """Fit to hypnograms (objects or paths), each cropped to the sleep period with
        ``wake_pad_min`` of wake on both sides; unscored epochs break the chain."""
        counts = np.zeros((n_bins, N_STAGES, N_STAGES))
        epoch_sec = None
        n = 0
        for h in hypnograms:
            hyp = read_hypnogram(h)
            if hyp.n_classes != 5:
                raise ValueError("SleepArchitectureModel.fit needs 5-class hypnograms")
            epoch_sec = epoch_sec or hyp.epoch_sec
            if hyp.epoch_sec != epoch_sec:
                raise ValueError(f"all hypnograms must share one epoch length; got "
                                 f"{hyp.epoch_sec} s and {epoch_sec} s")
            try:
                codes = hyp.codes[hyp.sleep_period_slice(wake_pad_min)]
            except ValueError:
                continue  # no sleep in this hypnogram
            a, b = codes[:-1], codes[1:]
            ok = (a >= 0) & (b >= 0)
            tbin = np.minimum((np.arange(len(a)) * hyp.epoch_sec / 3600 / bin_hours)
                              .astype(int), n_bins - 1)
            np.add.at(counts, (tbin[ok], a[ok], b[ok]), 1)
            n += 1
        if n == 0:
            raise ValueError("no hypnogram with sleep was given to SleepArchitectureModel.fit")
        return cls(counts=counts, bin_hours=bin_hours, epoch_sec=float(epoch_sec or 30.0))

    @classmethod
    def default(cls) -> SleepArchitectureModel:
        """The model fitted to the 54 Sleep-EDF sleep-cassette expert hypnograms."""
        from hypnoscope.simulate._architecture_counts import BIN_HOURS, COUNTS

        return cls(counts=np.array(COUNTS, dtype=float), bin_hours=BIN_HOURS)

    def sample(self, seed: int | np.random.Generator = 0, duration_h: float = 8.0,
               wake_pad_min: float = 30.0, start_time=None) -> Hypnogram:
        """Sample one night; see :func:`sample_hypnogram`."""
        return sample_hypnogram(self, seed=seed, duration_h=duration_h,
                                wake_pad_min=wake_pad_min, start_time=start_time)


def sample_hypnogram(model: SleepArchitectureModel | None = None,
                     seed: int | np.random.Generator = 0, duration_h: float = 8.0,
                     wake_pad_min: float = 30.0, start_time=None) -> Hypnogram:
    """Sample a hypnogram from a sleep-architecture model.

    Parameters
    ----------
    model : SleepArchitectureModel or None
        Defaults to :meth:`SleepArchitectureModel.default`.
    seed : int or Generator
        Randomness.
    duration_h : float
        Hours simulated by the chain from the start of the night (which, as in the fitted
        data, begins with ~``wake_pad_min`` of wake before sleep onset).
    wake_pad_min : float
        Minutes of wake appended after the chain (the final awakening and time in bed).
    start_time : datetime or None
        Wall-clock start stored in the hypnogram.

    Returns
    -------
    Hypnogram
    """
    if duration_h <= 0:
        raise ValueError(f"duration_h must be positive, got {duration_h}")
    model = model or SleepArchitectureModel.default()
    rng = np.random.default_rng(seed)
    mats = model.transition_matrices
    cum = np.cumsum(mats, axis=2)
    n = int(round(duration_h * 3600 / model.epoch_sec))
    tbin = np.minimum((np.arange(n) * model.epoch_sec / 3600 / model.bin_hours).astype(int),
                      model.n_bins - 1)
    u = rng.random(n)
    codes = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        row = cum[tbin[i - 1], codes[i - 1]]
        codes[i] = min(int(np.searchsorted(row, u[i] * row[-1], side="right")), N_STAGES - 1)
    pad = np.zeros(int(round(wake_pad_min * 60 / model.epoch_sec)), dtype=np.int64)
    return Hypnogram(np.concatenate([codes, pad]), epoch_sec=model.epoch_sec,
                     start_time=start_time)
