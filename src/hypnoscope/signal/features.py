"""Handcrafted per-epoch features and night-level temporal context.

:func:`epoch_features` turns epoched signals ``(n_epochs, n_channels, n_times)`` (µV) into
one feature row per epoch, vectorised over all epochs of a night (NumPy/SciPy along the
epoch axis, no per-epoch Python loop):

- every EEG/EOG/EMG channel: mean, standard deviation, skewness, kurtosis (the MSMAE-CNN
  paper's set), log absolute and relative band power in delta 0.5-4, theta 4-8,
  alpha 8-12, sigma 12-16 and beta 16-30 Hz (Welch), log band ratios, Hjorth
  activity/mobility/complexity, spectral entropy, spectral edge (50 % and 95 %) frequency,
  zero crossings and inter-quartile range;
- EOG channels also: slow (0.3-2 Hz) and rapid (2-5 Hz) eye-movement power and their ratio;
- EMG waveform channels also: tone = log power above 10 Hz and log RMS;
- EMG envelope channels (role ``"emg_envelope"``, e.g. the 1 Hz Sleep-EDF cassette EMG):
  only amplitude features (log mean of the envelope, its SD and IQR), since its spectrum
  carries no information.

:func:`add_context` adds temporal context to the feature matrix of ONE night (the YASA
idea): per-night robust z-scoring (:func:`robust_zscore`), centred and past-only rolling
means, rolling standard deviations and differences to the neighbouring epochs. Call it
per night so that context never crosses nights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hypnoscope.signal.normalize import normalization_stats

#: Frequency bands (name, low Hz, high Hz), as in the real band-power set.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("delta", 0.5, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 12.0),
    ("sigma", 12.0, 16.0),
    ("beta", 16.0, 30.0),
)
#: Log power ratios (numerator bands, denominator bands).
RATIOS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("delta_theta", ("delta",), ("theta",)),
    ("delta_alpha", ("delta",), ("alpha",)),
    ("theta_alpha", ("theta",), ("alpha",)),
    ("delta_beta", ("delta",), ("beta",)),
    ("slow_fast", ("delta", "theta"), ("alpha", "beta")),
    ("sigma_beta", ("sigma",), ("beta",)),
)
#: Total-power range used for relative power, entropy and spectral edge.
TOTAL_BAND = (0.5, 30.0)
EOG_SLOW = (0.3, 2.0)
EOG_RAPID = (2.0, 5.0)
EMG_TONE_LOW = 10.0
ROLES = ("eeg", "eog", "emg", "emg_envelope")
#: The MSMAE-CNN paper's handcrafted EEG set (its Random-Forest stream): mean, standard
#: deviation, skewness, kurtosis and the log power of the five bands, per EEG channel
#: (names as in :func:`epoch_features`).
PAPER_FEATURES = ("mean", "sd", "skew", "kurtosis", "abs_delta", "abs_theta", "abs_alpha",
                  "abs_sigma", "abs_beta")
_EPS = 1e-12


def _band_power(psd: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Integrated power in ``[lo, hi)`` along the last axis (rectangle rule)."""
    mask = (freqs >= lo) & (freqs < hi)
    if not mask.any():
        return np.zeros(psd.shape[:-1])
    df = freqs[1] - freqs[0]
    return psd[..., mask].sum(axis=-1) * df


def _hjorth(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dx = np.diff(x, axis=-1)
    ddx = np.diff(dx, axis=-1)
    var_x, var_dx, var_ddx = x.var(axis=-1), dx.var(axis=-1), ddx.var(axis=-1)
    mobility = np.sqrt(var_dx / (var_x + _EPS))
    complexity = np.sqrt(var_ddx / (var_dx + _EPS)) / (mobility + _EPS)
    return var_x, mobility, complexity


def welch_psd(epochs: np.ndarray, sfreq: float, window_sec: float = 4.0,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD of every epoch and channel (Hamming window, 50 % overlap, median average).

    Returns
    -------
    freqs : ndarray (n_freqs,)
    psd : ndarray (..., n_freqs)
        µV²/Hz when the epochs are in µV.
    """
    from scipy import signal  # lazy: a slow import (docs/design.md, design notes)

    n_times = epochs.shape[-1]
    nperseg = int(min(n_times, round(window_sec * sfreq)))
    freqs, psd = signal.welch(epochs, fs=sfreq, window="hamming", nperseg=nperseg,
                              noverlap=nperseg // 2, average="median", axis=-1)
    return freqs, psd


def _signal_features(x: np.ndarray, sfreq: float) -> dict[str, np.ndarray]:
    """Generic features of ``x`` (n_epochs, n_times) -> name -> (n_epochs,)."""
    from scipy import stats

    out: dict[str, np.ndarray] = {}
    out["mean"] = x.mean(axis=-1)
    out["sd"] = x.std(axis=-1)
    out["skew"] = np.nan_to_num(stats.skew(x, axis=-1))
    out["kurtosis"] = np.nan_to_num(stats.kurtosis(x, axis=-1))
    freqs, psd = welch_psd(x, sfreq)
    total = _band_power(psd, freqs, *TOTAL_BAND)
    power = {name: _band_power(psd, freqs, lo, hi) for name, lo, hi in BANDS}
    for name in power:
        out[f"abs_{name}"] = np.log10(power[name] + _EPS)
    for name in power:
        out[f"rel_{name}"] = power[name] / (total + _EPS)
    for rname, num, den in RATIOS:
        n = sum(power[b] for b in num)
        d = sum(power[b] for b in den)
        out[f"ratio_{rname}"] = np.log10((n + _EPS) / (d + _EPS))
    activity, mobility, complexity = _hjorth(x)
    out["hjorth_activity"] = np.log10(activity + _EPS)
    out["hjorth_mobility"] = mobility
    out["hjorth_complexity"] = complexity
    band = (freqs >= TOTAL_BAND[0]) & (freqs <= TOTAL_BAND[1])
    p = psd[..., band]
    p_norm = p / (p.sum(axis=-1, keepdims=True) + _EPS)
    out["spectral_entropy"] = -(p_norm * np.log2(p_norm + _EPS)).sum(axis=-1) / np.log2(
        max(int(band.sum()), 2))
    cum = np.cumsum(p_norm, axis=-1)
    fb = freqs[band]
    for q in (50, 95):
        idx = (cum < q / 100.0).sum(axis=-1).clip(0, len(fb) - 1)
        out[f"sef{q}"] = fb[idx]
    centred = x - out["mean"][..., None]
    out["zero_crossings"] = (np.diff(np.signbit(centred), axis=-1)).sum(axis=-1).astype(float)
    q75, q25 = np.percentile(x, [75, 25], axis=-1)
    out["iqr"] = q75 - q25
    out["_freqs"], out["_psd"] = freqs, psd  # reused by role-specific features
    return out


def epoch_features(epochs: np.ndarray, sfreq: float, roles: Sequence[str],
                   ch_names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Handcrafted features of every epoch and channel of a night.

    Parameters
    ----------
    epochs : ndarray (n_epochs, n_channels, n_times)
        Epoched signals in µV.
    sfreq : float
        Sampling rate (Hz); 60 Hz or more for the beta band to be meaningful.
    roles : sequence of str
        Role of each channel: ``"eeg"``, ``"eog"``, ``"emg"`` or ``"emg_envelope"``.
    ch_names : sequence of str, optional
        Channel names used in the feature names (default ``ch0``, ``ch1``, ...).

    Returns
    -------
    X : ndarray (n_epochs, n_features) float32
    names : list of str
        ``"<channel>_<feature>"`` for every column.

    Raises
    ------
    ValueError
        On a wrong shape, a role/channel count mismatch or an unknown role.
    """
    epochs = np.asarray(epochs, dtype=np.float64)
    if epochs.ndim != 3:
        raise ValueError(f"epochs must be (n_epochs, n_channels, n_times), got shape "
                         f"{epochs.shape}")
    n_epochs, n_channels, n_times = epochs.shape
    roles = [str(r).lower() for r in roles]
    if len(roles) != n_channels:
        raise ValueError(f"{len(roles)} roles given for {n_channels} channels")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown channel role(s) {bad}; expected one of {ROLES}")
    if ch_names is None:
        ch_names = [f"ch{i}" for i in range(n_channels)]
    if len(ch_names) != n_channels:
        raise ValueError(f"{len(ch_names)} channel names given for {n_channels} channels")
    if n_times < 8:
        raise ValueError(f"epochs of {n_times} samples are too short for features")
    if not np.isfinite(epochs).all():
        raise ValueError("epochs contain NaN or infinite values")

    columns: list[np.ndarray] = []
    names: list[str] = []

    def add(ch: str, feats: dict[str, np.ndarray]) -> None:
        for key, val in feats.items():
            if not key.startswith("_"):
                columns.append(np.asarray(val, dtype=np.float64))
                names.append(f"{ch}_{key}")

    for c, (role, ch) in enumerate(zip(roles, ch_names, strict=True)):
        x = epochs[:, c, :]
        if role == "emg_envelope":
            env = np.abs(x)
            q75, q25 = np.percentile(env, [75, 25], axis=-1)
            add(ch, {"emg_env_logmean": np.log10(env.mean(axis=-1) + _EPS),
                     "emg_env_sd": env.std(axis=-1), "emg_env_iqr": q75 - q25})
            continue
        feats = _signal_features(x, sfreq)
        freqs, psd = feats["_freqs"], feats["_psd"]
        if role == "eog":
            slow = _band_power(psd, freqs, *EOG_SLOW)
            rapid = _band_power(psd, freqs, *EOG_RAPID)
            feats["eog_slow_logpow"] = np.log10(slow + _EPS)
            feats["eog_rapid_logpow"] = np.log10(rapid + _EPS)
            feats["eog_slow_rapid_ratio"] = np.log10((slow + _EPS) / (rapid + _EPS))
        elif role == "emg":
            hi = min(sfreq / 2.0, 100.0) + 1e-9
            feats["emg_tone_logpow"] = np.log10(_band_power(psd, freqs, EMG_TONE_LOW, hi)
                                                + _EPS)
            feats["emg_log_rms"] = np.log10(np.sqrt((x ** 2).mean(axis=-1)) + _EPS)
        add(ch, feats)
    X = np.stack(columns, axis=1) if columns else np.zeros((n_epochs, 0))
    return X.astype(np.float32), names


# -- temporal context -----------------------------------------------------------------

def _rolling_mean_std(x: np.ndarray, before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD over epochs ``t-before .. t+after`` (truncated at the night edges)."""
    n = len(x)
    c1 = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    c2 = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x * x, axis=0)])
    t = np.arange(n)
    lo = np.clip(t - before, 0, n)
    hi = np.clip(t + after + 1, 0, n)
    cnt = (hi - lo)[:, None].astype(float)
    mean = (c1[hi] - c1[lo]) / cnt
    var = np.maximum((c2[hi] - c2[lo]) / cnt - mean ** 2, 0.0)
    return mean, np.sqrt(var)


def robust_zscore(X: np.ndarray) -> np.ndarray:
    """Per-column robust z-score ``(x - median) / (IQR / 1.349)`` of one night (float64).

    The statistics are those of :func:`hypnoscope.signal.normalize.normalization_stats`
    with ``method="robust"`` (a column with zero IQR is scaled by its SD; a constant
    column becomes 0).
    """
    return night_normalize(X, "robust")


#: Per-night normalisations of :func:`add_context` (see :func:`night_normalize`).
CONTEXT_NORMALIZATIONS = ("robust", "zscore", "quantile")


def _stats_mask(rows, n: int) -> np.ndarray | None:
    """Boolean mask of the epochs in ``rows`` (slice, indices or mask); None for all."""
    if rows is None:
        return None
    if isinstance(rows, slice):
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        return mask
    r = np.asarray(rows)
    if r.dtype == bool:
        if r.shape != (n,):
            raise ValueError(f"stats_rows mask must have shape ({n},), got {r.shape}")
        return r.copy()
    if r.size and (r.ndim != 1 or not np.issubdtype(r.dtype, np.integer)
                   or r.min() < -n or r.max() >= n):
        raise ValueError(f"stats_rows must be a slice, a boolean mask or epoch indices "
                         f"in [0, {n}), got {rows!r}")
    mask = np.zeros(n, dtype=bool)
    mask[r.astype(int)] = True
    return mask


def shrink_weight(n: int, k: float) -> float:
    """Weight of a recording's own normalisation statistics against the training
    population's: ``(n - 1) / (n - 1 + k)`` for ``n`` epochs in the statistics (one epoch
    says nothing about a spread: weight 0; a long recording: close to 1); 1 for
    ``k = 0`` (no shrinkage)."""
    if k < 0:
        raise ValueError(f"shrinkage k must be >= 0, got {k}")
    if k == 0:
        return 1.0
    return max(int(n) - 1, 0) / (max(int(n) - 1, 0) + float(k))


def population_stats(matrices: Sequence[np.ndarray], method: str = "robust",
                     stats_rows: Sequence | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The training population's per-night normalisation statistics: the median over the
    nights of each night's centre and scale (those :func:`night_normalize` computes,
    over each night's ``stats_rows``), per column.

    Returns
    -------
    center, scale : ndarray (1, n_features)
    """
    if method not in ("robust", "zscore"):
        raise ValueError(f"population statistics need method 'robust' or 'zscore', got "
                         f"{method!r}")
    rows = list(stats_rows) if stats_rows is not None else [None] * len(matrices)
    centers, scales = [], []
    for X, r in zip(matrices, rows, strict=True):
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        ref = _stats_mask(r, len(X))
        c, s = normalization_stats(X, method, axes=0,
                                   exclude=None if ref is None or ref.all() else ~ref)
        centers.append(c)
        scales.append(s)
    return np.median(np.vstack(centers), axis=0)[None], np.median(np.vstack(scales),
                                                                    axis=0)[None]


def estimate_shrink(nights: Sequence[np.ndarray], stretches: Sequence[Sequence[np.ndarray]],
                    method: str = "robust", grid: Sequence[float] | None = None) -> float:
    """The shrinkage constant ``k`` (see :func:`shrink_weight`) that best recovers whole
    nights' normalisation statistics from stretches of them, estimated on training nights.

    For every stretch of a night, its own centre and scale are shrunk toward the
    population's (the median over ``nights``, :func:`population_stats`) with weight
    ``w = shrink_weight(len(stretch), k)``; the ``k`` of ``grid`` with the smallest
    squared error against the whole night's centre and scale (each column in units of
    the population's scale) is returned. An empirical-Bayes choice: a stretch whose
    statistics wander far from its night's (few epochs, few stages) leans on the
    population, and how far they wander is measured, not assumed.

    Parameters
    ----------
    nights : sequence of ndarray (n_epochs, n_features)
        Whole training nights' feature matrices.
    stretches : sequence of sequence of ndarray
        ``stretches[i]``: feature matrices of stretches of night ``i`` (as they would be
        staged: e.g. band powers re-z-scored on the stretch).
    method : {"robust", "zscore"}
    grid : sequence of float, optional
        Candidate ``k`` (default 41 values from 1 to 10,000 epochs, log-spaced).

    Returns
    -------
    float
    """
    if len(nights) != len(stretches):
        raise ValueError(f"{len(nights)} nights but stretches for {len(stretches)}")
    grid = np.geomspace(1.0, 1e4, 41) if grid is None else np.asarray(grid, dtype=float)
    if not len(grid) or (grid < 0).any():
        raise ValueError(f"shrinkage grid must hold values >= 0, got {list(grid)}")
    pc, ps = population_stats(nights, method)
    own, whole, sizes = [], [], []
    for X, parts in zip(nights, stretches, strict=True):
        cn, sn = normalization_stats(np.asarray(X, dtype=np.float64), method, axes=0)
        for S in parts:
            cs, ss = normalization_stats(np.asarray(S, dtype=np.float64), method, axes=0)
            own.append(np.vstack([cs, ss]))
            whole.append(np.vstack([cn, sn]))
            sizes.append(len(S))
    if not own:
        raise ValueError("estimating the shrinkage needs at least one stretch")
    own_a, whole_a = np.stack(own), np.stack(whole)  # (n_stretches, 2, n_features)
    pop = np.vstack([pc, ps])[None]
    unit = np.maximum(ps, 1e-12)[None]
    err = [np.nanmean(((w * own_a + (1 - w) * pop - whole_a) / unit) ** 2)
           for k in grid
           for w in [np.array([shrink_weight(n, k) for n in sizes])[:, None, None]]]
    return float(grid[int(np.nanargmin(err))])


def night_normalize(X: np.ndarray, method: str = "robust", stats_rows=None,
                    prior: tuple[np.ndarray, np.ndarray, float] | None = None) -> np.ndarray:
    """Normalise every column of one night's feature matrix (float64).

    Parameters
    ----------
    X : ndarray (n_epochs, n_features)
    method : {"robust", "zscore", "quantile"}
        ``robust``: ``(x - median) / (IQR / 1.349)``; ``zscore``: ``(x - mean) / SD``
        (both by :func:`hypnoscope.signal.normalize.normalization_stats`); ``quantile``:
        the normal score of the epoch's rank within the night,
        ``Phi^-1((rank - 0.5) / n)`` (ties share their mean rank), so every column of
        every night has the same distribution whatever its amplitude, offset or skew --
        e.g. slow-wave power that falls with age keeps its ordering across the night.
    stats_rows : slice, ndarray of int or bool, optional
        The epochs whose statistics are used (e.g. the sleep period, without the wake
        before and after it); the normalisation is applied to every epoch. ``None``
        (default) or no epoch selected: the whole night. With ``quantile``, an epoch's
        score is that of its mid-rank among the selected epochs, clipped to their
        lowest and highest score.
    prior : (center, scale, k), optional
        ``robust``/``zscore`` only: shrink the night's statistics toward the training
        population's (:func:`population_stats`): centre and scale are
        ``w * own + (1 - w) * population`` with ``w =`` :func:`shrink_weight` ``(n, k)``
        for ``n`` epochs in the statistics, so a one-epoch recording gets the
        population's statistics and a long one about its own.

    Returns
    -------
    ndarray (n_epochs, n_features) float64
        Constant columns become 0.
    """
    X = np.asarray(X, dtype=np.float64)
    ref = _stats_mask(stats_rows, len(X))
    if ref is not None and ref.all():
        ref = None
    if method in ("robust", "zscore"):
        center, scale = normalization_stats(X, method, axes=0,
                                            exclude=None if ref is None else ~ref)
        if prior is not None:
            n = int(ref.sum()) if ref is not None and ref.any() else len(X)
            w = shrink_weight(n, prior[2])
            center = w * center + (1.0 - w) * np.asarray(prior[0], dtype=np.float64)
            scale = w * scale + (1.0 - w) * np.asarray(prior[1], dtype=np.float64)
        return (X - center) / scale
    if method == "quantile":
        if prior is not None:
            raise ValueError("shrinkage toward population statistics needs the 'robust' "
                             "or 'zscore' normalisation, not 'quantile'")
        from scipy import stats
        from scipy.special import ndtri

        if len(X) == 0:
            return X.copy()
        if ref is not None and ref.any():
            return _quantile_against(X, X[ref])
        ranks = stats.rankdata(X, method="average", axis=0, nan_policy="omit")
        n = np.maximum((~np.isnan(X)).sum(axis=0), 1)  # NaNs stay NaN, out of the ranks
        return ndtri((ranks - 0.5) / n)
    raise ValueError(f"per-night normalisation must be one of {CONTEXT_NORMALIZATIONS}, "
                     f"got {method!r}")


def _quantile_against(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Normal score of every value of ``X`` by its mid-rank among the reference rows
    ``R`` (per column, NaNs ignored); equals the within-night quantile score when
    ``R`` is ``X``."""
    from scipy.special import ndtri

    out = np.full(X.shape, np.nan)
    for j in range(X.shape[1]):
        r = np.sort(R[:, j][~np.isnan(R[:, j])])
        n = len(r)
        if n == 0:
            continue
        x = X[:, j]
        ok = ~np.isnan(x)
        mid = (np.searchsorted(r, x[ok], "left") + np.searchsorted(r, x[ok], "right")) / 2
        out[ok, j] = ndtri(np.clip(mid / n, 0.5 / n, 1 - 0.5 / n))
    return out


def add_context(X: np.ndarray, names: Sequence[str] | None = None, *,
                windows: Sequence[int] = (5, 11, 21), past_windows: Sequence[int] = (4, 10),
                std_windows: Sequence[int] = (11,), diffs: bool = True,
                normalize: str | None = "robust", keep_raw: bool = True, stats_rows=None,
                night_stats: bool = False, length: bool = False, edges: bool = False,
                prior: tuple[np.ndarray, np.ndarray, float] | None = None,
                ) -> tuple[np.ndarray, list[str]]:
    """Temporal context features for the epochs of ONE night.

    Parameters
    ----------
    X : ndarray (n_epochs, n_features) or (n_epochs, ...)
        Per-epoch features of one night in time order (extra axes are flattened).
    names : sequence of str, optional
        Names of the input columns (default ``f0``, ``f1``, ...).
    windows : sequence of int
        Centred rolling-mean window lengths in epochs (odd; ``w`` covers ``t-w//2 ..
        t+w//2``).
    past_windows : sequence of int
        Past-only rolling-mean lengths (epochs ``t-w+1 .. t``).
    std_windows : sequence of int
        Centred rolling-SD window lengths.
    diffs : bool
        Add differences to the previous and to the next epoch.
    normalize : {"robust", "zscore", "quantile", None}
        Per-night normalisation of every column (:func:`night_normalize`) before the
        context is computed (the night-level normalisation that makes features
        comparable across subjects and recordings); ``"robust"``: median and
        IQR / 1.349.
    keep_raw : bool
        Also keep the un-normalised input columns.
    stats_rows : slice, ndarray of int or bool, optional
        Epochs whose statistics the per-night normalisation uses (e.g. the sleep
        period); see :func:`night_normalize`. Needs ``normalize``.
    night_stats : bool
        Also add the night's robust statistics of every input column, the median and
        IQR / 1.349 of :func:`hypnoscope.signal.normalize.normalization_stats` over the
        ``stats_rows`` epochs, as columns that are constant over the night. A
        normalised feature says where an epoch lies within its night; these say what
        the night as a whole looks like (e.g. little slow-wave power all night in an
        older sleeper), which the normalisation removes.
    length : bool
        Also add the recording's length, ``log(n_epochs)``, as a column constant over
        the recording (``recording|log_epochs``): how far a model can trust the
        per-recording normalisation and the night-long context (a 30-min stretch is
        not a night).
    edges : bool
        Also add each epoch's distance to the first and to the last epoch of the
        recording, capped at the longest half-window (``recording|from_start``,
        ``recording|to_end``): where a window is cut short by the edge of the
        recording, so that an edge (the start of a nap, of a live stream, of one part of
        a split night) is not read as a change of stage.
    prior : (center, scale, k), optional
        Shrink the per-night normalisation's statistics toward the training
        population's (see :func:`night_normalize`).

    Returns
    -------
    Xc : ndarray (n_epochs, n_out) float32
    names : list of str
        ``<name>`` (raw), ``<name>|z`` (night-normalised), ``<name>|c<w>`` (centred mean),
        ``<name>|p<w>`` (past mean), ``<name>|s<w>`` (centred SD), ``<name>|dprev`` and
        ``<name>|dnext``; with ``night_stats`` also ``<name>|nmed`` and ``<name>|niqr``;
        with ``length`` ``recording|log_epochs``; with ``edges`` last
        ``recording|from_start`` and ``recording|to_end``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim < 1 or len(X) == 0:
        raise ValueError("add_context needs at least one epoch")
    X = X.reshape(len(X), -1)
    if names is None:
        names = [f"f{i}" for i in range(X.shape[1])]
    names = list(names)
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} names for {X.shape[1]} feature columns")
    for w in (*windows, *past_windows, *std_windows):
        if int(w) < 1:
            raise ValueError(f"context window lengths must be >= 1 epoch, got {w}")
    if normalize is not None and normalize not in CONTEXT_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {CONTEXT_NORMALIZATIONS} or None, got "
                         f"{normalize!r}")
    if stats_rows is not None and normalize is None:
        raise ValueError("stats_rows selects the epochs of the per-night normalisation; "
                         "it needs normalize")
    ref = _stats_mask(stats_rows, len(X))
    Z = night_normalize(X, normalize, ref, prior) if normalize is not None else X
    blocks: list[np.ndarray] = []
    out_names: list[str] = []
    if keep_raw and normalize is not None:
        blocks.append(X)
        out_names += names
    blocks.append(Z)
    out_names += [f"{n}|z" if normalize else n for n in names]
    for w in windows:
        h = int(w) // 2
        mean, _ = _rolling_mean_std(Z, h, h)
        blocks.append(mean)
        out_names += [f"{n}|c{int(w)}" for n in names]
    for w in past_windows:
        mean, _ = _rolling_mean_std(Z, int(w) - 1, 0)
        blocks.append(mean)
        out_names += [f"{n}|p{int(w)}" for n in names]
    for w in std_windows:
        h = int(w) // 2
        _, sd = _rolling_mean_std(Z, h, h)
        blocks.append(sd)
        out_names += [f"{n}|s{int(w)}" for n in names]
    if diffs:
        prev = np.vstack([Z[:1], Z[:-1]])
        nxt = np.vstack([Z[1:], Z[-1:]])
        blocks += [Z - prev, nxt - Z]
        out_names += [f"{n}|dprev" for n in names] + [f"{n}|dnext" for n in names]
    extra, extra_names = _recording_columns(X, names, ref, night_stats, length, edges,
                                            (*windows, *std_windows), past_windows)
    return np.hstack(blocks + extra).astype(np.float32), out_names + extra_names


def _recording_columns(X: np.ndarray, names: list[str], ref, night_stats: bool, length: bool,
                       edges: bool, centred: Sequence[int], past: Sequence[int],
                       ) -> tuple[list[np.ndarray], list[str]]:
    """The columns of :func:`add_context` that describe the recording rather than the
    epoch: its robust statistics (``night_stats``), its length and each epoch's distance
    to its edges (capped at the longest reach of the centred and past windows)."""
    blocks: list[np.ndarray] = []
    out_names: list[str] = []
    if night_stats:
        center, scale = normalization_stats(X, "robust", axes=0,
                                            exclude=None if ref is None else ~ref)
        blocks += [np.broadcast_to(center, X.shape), np.broadcast_to(scale, X.shape)]
        out_names += [f"{n}|nmed" for n in names] + [f"{n}|niqr" for n in names]
    if length:
        blocks.append(np.full((len(X), 1), np.log(len(X))))
        out_names.append("recording|log_epochs")
    if edges:
        reach = max([int(w) // 2 for w in centred] + [int(w) - 1 for w in past] + [1])
        t = np.arange(len(X), dtype=np.float64)
        blocks.append(np.column_stack([np.minimum(t, reach),
                                       np.minimum(len(X) - 1 - t, reach)]))
        out_names += ["recording|from_start", "recording|to_end"]
    return blocks, out_names
