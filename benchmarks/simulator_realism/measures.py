"""Measurements shared by the simulator-realism checks (``run``, ``learnability``,
``calibrate``): the real band-power targets, the same band powers of simulated nights,
the real hypnograms that drive them, and the score of a staging.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common import BANDPOWER_DIR, HYPNOGRAM_DIR, SHARED_DATA

SHARED = SHARED_DATA
HYPNO_DIR = HYPNOGRAM_DIR
BANDS = ((0.5, 4.0), (4.0, 8.0), (8.0, 12.0), (12.0, 16.0), (16.0, 30.0))
BAND_NAMES = ("delta", "theta", "alpha", "sigma", "beta")
STAGES = ("W", "N1", "N2", "N3", "R")
CHANNELS = ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal")


def real_band_targets(stat: str = "median") -> np.ndarray:
    """Per-stage relative band power of the real set: (5 stages, 3 channels, 5 bands)."""
    feats, labels = [], []
    for f in sorted(BANDPOWER_DIR.glob("*.npz")):
        with np.load(f, allow_pickle=False) as d:
            feats.append(d["features"][:, :, 5:])
            labels.append(d["labels"])
    x, y = np.concatenate(feats), np.concatenate(labels)
    fn = np.median if stat == "median" else np.mean
    return np.stack([fn(x[y == s], axis=0) for s in range(5)])


def relative_bandpower(x_uv: np.ndarray, sfreq: float, h_freq: float,
                       absolute: bool = False) -> np.ndarray:
    """Relative (or absolute) band power per 30-s epoch, as in the real feature set:
    (n_epochs, 5)."""
    from mne.filter import filter_data
    from scipy.signal import welch

    xf = filter_data(x_uv.astype(np.float64), sfreq, 0.5, h_freq, verbose="error")
    n = int(30 * sfreq)
    ep = xf[: len(xf) // n * n].reshape(-1, n)
    f, p = welch(ep, sfreq, window="hamming", nperseg=400, noverlap=200, nfft=400,
                 average="median", detrend="constant")
    bp = np.stack([p[:, (f >= lo) & (f < hi)].sum(axis=1) for lo, hi in BANDS], axis=1)
    return bp if absolute else bp / bp.sum(axis=1, keepdims=True)


def real_log_total(stat: str = "median") -> np.ndarray:
    """Per-stage log total power (0.5-30 Hz bands) of the real set minus that of N2:
    (5 stages, 3 channels). The real signals were z-scored per night, so only these
    between-stage differences are meaningful."""
    tot, labels = [], []
    for f in sorted(BANDPOWER_DIR.glob("*.npz")):
        with np.load(f, allow_pickle=False) as d:
            tot.append(np.log(np.exp(d["features"][:, :, :5]).sum(axis=2)))
            labels.append(d["labels"])
    x, y = np.concatenate(tot), np.concatenate(labels)
    med = np.stack([np.median(x[y == s], axis=0) for s in range(5)])
    return med - med[2]


def simulate_rel_powers(hyps, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Simulate each hypnogram; return per-night (n_epochs, 3, 5) absolute band powers
    and labels."""
    from hypnoscope.simulate import simulate_signals

    out, labs = [], []
    for i, h in enumerate(hyps):
        sig, hyp, _ = simulate_signals(h, seed=seed * 1000 + i)
        rel = np.stack([relative_bandpower(sig.fpz, sig.sfreq, 30.0, True),
                        relative_bandpower(sig.pz, sig.sfreq, 30.0, True),
                        relative_bandpower(sig.eog, sig.sfreq, 15.0, True)], axis=1)
        k = min(len(rel), hyp.n_epochs)
        out.append(rel[:k])
        labs.append(hyp.codes[:k])
    return out, labs


def simulated_relative_powers(hyps, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Median simulated relative band power (5 stages, 3 channels, 5 bands) and log total
    power relative to N2 (5 stages, 3 channels)."""
    bp, labs = simulate_rel_powers(hyps, seed)
    x, y = np.concatenate(bp), np.concatenate(labs)
    rel = x / x.sum(axis=2, keepdims=True)
    logtot = np.log(x.sum(axis=2))
    med_rel = np.stack([np.median(rel[y == s], axis=0) for s in range(5)])
    med_tot = np.stack([np.median(logtot[y == s], axis=0) for s in range(5)])
    return med_rel, med_tot - med_tot[2]


def load_nights(n: int, wake_pad_min: float = 30.0):
    """``n`` real hypnograms spread over the 54 (one per subject first), cropped."""
    from hypnoscope.io.hypnograms import read_hypnogram

    files = sorted(HYPNO_DIR.glob("*-Hypnogram.edf"))
    first = [f for f in files if f.name[5] == "1"]
    second = [f for f in files if f.name[5] != "1"]
    chosen = (first[::2] + first[1::2] + second)[:n]
    hyps = []
    for f in chosen:
        h = read_hypnogram(f)
        hyps.append((f.name, h[h.sleep_period_slice(wake_pad_min)].copy(onset_sec=0.0)))
    return hyps


def simulator_fingerprint() -> str:
    """Short hash of the simulator's source files (invalidates cached partial results)."""
    import hashlib

    import hypnoscope.simulate as sim

    h = hashlib.sha256()
    for f in sorted(Path(sim.__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, Cohen's kappa, macro-F1, per-stage F1 and confusion matrix (scored epochs
    only), by :func:`hypnoscope.evaluation.metrics.evaluate`'s rule (a stage absent from both the
    truth and the prediction has F1 ``nan`` and is left out of macro-F1)."""
    from hypnoscope.evaluation.metrics import evaluate

    r = evaluate(y_true, y_pred, n_classes=5, labels=STAGES)
    return {"accuracy": r["accuracy"], "kappa": r["kappa"], "macro_f1": r["macro_f1"],
            "per_stage_f1": r["per_class_f1"], "confusion_matrix": r["confusion_matrix"],
            "n_epochs": r["n_epochs"]}
