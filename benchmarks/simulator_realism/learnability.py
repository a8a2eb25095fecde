"""Learnability check of the PSG simulator: how well a learned model separates its stages.

Real PSG never lets a model reach ~100 % 5-class accuracy (inter-scorer agreement is about
80-85 %, N1 F1 about 0.4-0.5), so a simulator whose stages a small model learns perfectly
is too easy. This check simulates nights from real Sleep-EDF hypnograms, one simulated
subject per night (its own :class:`~hypnoscope.simulate.SubjectTraits`), computes
:func:`hypnoscope.signal.features.epoch_features` on EEG Fpz-Cz, EEG Pz-Oz, EOG and the 100 Hz
EMG, trains ``lightgbm-context`` on ``n_train`` nights and scores it on the remaining
nights (other subjects, other hypnograms: subject-wise).

Usage: ``python -m benchmarks.simulator_realism.learnability [--train 8 --test 4]
[--difficulty 1.0]``; also run by ``benchmarks.simulator_realism.run --learnability``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.common import ROOT  # noqa: E402
from benchmarks.simulator_realism.measures import (  # noqa: E402
    load_nights,
    score,
    simulator_fingerprint,
)

ROLES = ["eeg", "eeg", "eog", "emg"]
CHANNELS = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]


def night_features(hyp, seed: int, difficulty: float | None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Features (n_epochs, n_features), labels and (if available) latent stages."""
    from hypnoscope.signal.features import epoch_features
    from hypnoscope.simulate import simulate_signals

    kw = {} if difficulty is None else {"difficulty": difficulty}
    sig, hyp, _ = simulate_signals(hyp, seed=seed, **kw)
    data = np.vstack([sig.fpz, sig.pz, sig.eog, sig.emg])
    n = int(30 * sig.sfreq)
    k = min(data.shape[1] // n, hyp.n_epochs)
    ep = data[:, : k * n].reshape(4, k, n).transpose(1, 0, 2)
    X, _ = epoch_features(ep, sig.sfreq, ROLES, CHANNELS)
    latent = getattr(sig, "latent_stage", None)
    return X, hyp.codes[:k], None if latent is None else np.asarray(latent)[:k]


def learnability(n_train: int = 8, n_test: int = 4, seed: int = 0,
                 difficulty: float | None = None,
                 cache_dir: str | Path | None = None) -> dict:
    """Train ``lightgbm-context`` on simulated nights and score it on held-out subjects.

    Returns a dict with the test ``score`` (accuracy, kappa, per-stage F1, confusion),
    the fraction of epochs whose latent physiological state differs from the label,
    and timing.
    """
    from hypnoscope.datasets import Night
    from hypnoscope.models import make_model
    from hypnoscope.utils.files import atomic_path
    from hypnoscope.utils.runtime import progress

    t0 = time.time()
    nights = load_nights(n_train + n_test)
    cache = None
    if cache_dir is not None:
        tag = "default" if difficulty is None else f"d{difficulty:g}"
        cache = Path(cache_dir) / f"learn-{simulator_fingerprint()}-seed{seed}-{tag}"
        cache.mkdir(parents=True, exist_ok=True)
    data = []
    for i, (name, hyp) in enumerate(progress(nights, desc="simulate+features", unit="night")):
        part = None if cache is None else cache / f"{name}.npz"
        if part is not None and part.is_file():
            with np.load(part, allow_pickle=False) as d:
                X, y, lat = d["X"], d["y"], (d["latent"] if "latent" in d else None)
        else:
            X, y, lat = night_features(hyp, seed=seed * 1000 + 500 + i,
                                       difficulty=difficulty)
            if part is not None:
                with atomic_path(part) as tmp, open(tmp, "wb") as fh:
                    arrays = {"X": X, "y": y} if lat is None else {"X": X, "y": y,
                                                                  "latent": lat}
                    np.savez(fh, **arrays)
        data.append(Night(X=X, y=y, subject_id=f"sim{i:02d}", night_id=name, kind="features",
                          meta={"latent": lat}))
    t_sim = time.time() - t0
    model = make_model("lightgbm-context", seed=seed)
    model.fit(data[:n_train])
    y_true = np.concatenate([n.y for n in data[n_train:]])
    y_pred = np.concatenate([model.predict(n) for n in data[n_train:]])
    res = {"model": "lightgbm-context", "n_train_nights": n_train, "n_test_nights": n_test,
           "train_nights": [n.night_id for n in data[:n_train]],
           "test_nights": [n.night_id for n in data[n_train:]],
           "difficulty": difficulty, "score": score(y_true, y_pred),
           "seconds_simulation_features": t_sim, "seconds_total": time.time() - t0}
    lats = [n.meta["latent"] for n in data]
    if all(lat is not None for lat in lats):
        y_all = np.concatenate([n.y for n in data])
        lat_all = np.concatenate(lats)
        m = y_all >= 0
        res["latent_differs"] = {
            "all": float(np.mean(lat_all[m] != y_all[m])),
            **{st: float(np.mean(lat_all[y_all == s] != s))
               for s, st in enumerate(("W", "N1", "N2", "N3", "R")) if (y_all == s).any()}}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=8)
    ap.add_argument("--test", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--difficulty", type=float, default=None,
                    help="simulator's difficulty (default: the simulator's own)")
    ap.add_argument("--cache", default=str(ROOT / ".cache" / "simulator_realism"))
    args = ap.parse_args(argv)
    res = learnability(args.train, args.test, args.seed, args.difficulty,
                       args.cache)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
