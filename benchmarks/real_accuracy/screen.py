"""Screen feature ideas for ``lightgbm-context`` with a plain subject-wise 10-fold CV.

A cheap first look (one model per fold, no inner loop) at what the per-epoch feature
matrix of today's ``lightgbm-context`` could gain from more input, before a candidate is
measured properly with nested CV (``benchmarks/real_accuracy/nested.py``). Every variant
is the default context matrix (:data:`hypnoscope.models.feature_classifiers.
DEFAULT_CONTEXT`) plus:

- ``nightstats``: the night's median and IQR of every raw feature (constant columns; the
  idea behind the context option ``night_stats``);
- ``pos``: the epoch's position in the night (hours from the start of the recording and
  the fraction of the night elapsed);
- ``derived``: log-ratios between bands of each channel (delta/theta, delta/beta,
  theta/alpha, sigma/theta, alpha/beta, delta/sigma), between channels for each band, and
  each channel's log total power, all with the same temporal context;
- ``wide``: longer context windows (centred 41 epochs, past 30 epochs).

Real data: the 59-subject Sleep-EDF band-power set, the 10 subject-wise folds of
``benchmarks/real_features`` (checked against ``real_folds.json``). LightGBM as in
:func:`hypnoscope.models.feature_classifiers.build_estimator` (sqrt class weights, two
threads). Each variant's test probabilities are cached in ``--state-dir``, fold by fold
(:func:`hypnoscope.evaluation.cross_validation.cross_validate`). Writes
``benchmarks/results/real_accuracy_screen.{json,md}``.

Usage (from the repository root; about 5 min per variant on 2 cores)::

    nice -n 5 .venv/bin/python -m benchmarks.real_accuracy.screen
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import BANDPOWER_DIR, RESULTS, ROOT, load_bandpower, result_header
from benchmarks.real_features import run as rf
from hypnoscope.evaluation.cross_validation import cross_validate
from hypnoscope.evaluation.metrics import evaluate
from hypnoscope.evaluation.splits import subject_kfold
from hypnoscope.models.feature_classifiers import (
    DEFAULT_CONTEXT,
    build_estimator,
    resolve_class_weight,
)
from hypnoscope.signal.features import add_context
from hypnoscope.stages import stage_names
from hypnoscope.utils.files import write_json_atomic, write_text_atomic

DEFAULT_STATE = ROOT / "benchmarks" / "real_accuracy" / ".cache" / "screen"
VARIANTS = {"base": "lightgbm-context as shipped before (the reference)",
            "nightstats": "+ the night's median and IQR of every raw feature",
            "pos": "+ the epoch's position in the night (hours, fraction)",
            "derived": "+ band and channel log-ratios and log total power",
            "wide": "+ centred window of 41 and past window of 30 epochs"}


def derived(X: np.ndarray) -> np.ndarray:
    """Log-ratio features of one night's ``(n, 3, 10)`` band powers (log_delta ..
    log_beta are features 0-4 of each channel)."""
    L = X[:, :, :5]
    cols = []
    for c in range(L.shape[1]):
        d, t, a, s, b = (L[:, c, i] for i in range(5))
        cols += [d - t, d - b, t - a, s - t, a - b, d - s]
    for i in range(5):
        cols += [L[:, 0, i] - L[:, 2, i], L[:, 1, i] - L[:, 2, i], L[:, 0, i] - L[:, 1, i]]
    tot = np.log(np.exp(L).sum(axis=2))
    cols += [tot[:, 0], tot[:, 1], tot[:, 2], tot[:, 0] - tot[:, 2]]
    return np.stack(cols, 1)


def matrix(night, variant: str) -> np.ndarray:
    """The variant's feature matrix of one night."""
    X = np.asarray(night.X, float)
    flat = X.reshape(len(X), -1)
    ctx = dict(DEFAULT_CONTEXT)
    if variant == "wide":
        ctx["windows"], ctx["past_windows"] = (5, 11, 21, 41), (4, 10, 30)
    if variant == "derived":
        flat = np.hstack([flat, derived(X)])
    M, _ = add_context(flat, **ctx)
    extra = []
    if variant == "nightstats":
        med = np.median(flat, axis=0)
        iqr = np.subtract(*np.percentile(flat, [75, 25], axis=0))
        extra += [np.broadcast_to(med, flat.shape), np.broadcast_to(iqr, flat.shape)]
    if variant == "pos":
        t = np.arange(len(X)) / 120.0
        extra += [t[:, None], (t / t[-1])[:, None]]
    if extra:
        M = np.hstack([M, *extra])
    return np.nan_to_num(M).astype(np.float32)


class VariantModel:
    """LightGBM (sqrt class weights, two threads) on a variant's feature matrices,
    computed once per night (``mats``: night id -> matrix)."""

    def __init__(self, mats: dict[str, np.ndarray]) -> None:
        self.mats = mats

    def fit(self, nights) -> VariantModel:
        X = np.vstack([self.mats[n.night_id] for n in nights])
        y = np.concatenate([n.y for n in nights])
        k = y >= 0
        self.est = build_estimator("lightgbm", seed=0, n_jobs=2,
                                   class_weight=resolve_class_weight("sqrt", y[k], 5))
        self.est.fit(X[k], y[k])
        return self

    def predict_proba(self, night) -> np.ndarray:
        return self.est.predict_proba(self.mats[night.night_id])


def run_variant(variant: str, nights, folds, state_dir: Path) -> dict[str, np.ndarray]:
    """Test probabilities of every night (night id -> probabilities, in fold order),
    cached fold by fold in ``state_dir``."""
    mats = {n.night_id: matrix(n, variant) for n in nights}
    t0 = time.perf_counter()
    cv = cross_validate(nights, lambda _fold: VariantModel(mats), folds=folds, cache_dir=state_dir,
                        cache_key=f"screen-{variant}", desc=variant,
                        on_fold=lambda r: print(f"{variant} {r.fold.name}: "
                                                f"{time.perf_counter() - t0:.0f} s",
                                                flush=True))
    return {nights[i].night_id: p for r in cv.records
            for i, (_, p) in zip(r.fold.test, r.nights(), strict=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(BANDPOWER_DIR))
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--state-dir", default=str(DEFAULT_STATE))
    args = ap.parse_args(argv)
    nights = load_bandpower(args.data)
    folds = subject_kfold(nights, k=10, seed=0)
    rf.check_folds(nights, folds, 0, 10)
    variants = ["base", *[v for v in args.variants if v != "base"]]
    by_id = {n.night_id: n for n in nights}
    rows, fold_acc = {}, {}
    for v in variants:
        probs = run_variant(v, nights, folds, Path(args.state_dir))
        accs = []
        for f in folds:
            _, _, test = f.select(nights)
            t = np.concatenate([n.y for n in test])
            p = np.concatenate([probs[n.night_id].argmax(1) for n in test])
            accs.append(float((p[t >= 0] == t[t >= 0]).mean()))
        fold_acc[v] = np.array(accs)
        t = np.concatenate([by_id[k].y for k in probs])
        p = np.concatenate([probs[k].argmax(1) for k in probs])
        ev = evaluate(t, p, n_classes=5)
        d = 100 * (fold_acc[v] - fold_acc["base"])
        rows[v] = {"description": VARIANTS[v],
                   **{k: float(ev[k]) for k in ("accuracy", "macro_f1", "kappa")},
                   "f1": {c: float(ev["per_class"][c]["f1"]) for c in stage_names(5)},
                   "fold_accuracy": accs, "worst_fold": float(min(accs)),
                   "paired_vs_base": None if v == "base" else
                   {"mean": float(d.mean()), "sd": float(d.std(ddof=1)),
                    "better": int((d > 0).sum())}}
    res = {**result_header("real_accuracy_screen", "benchmarks.real_accuracy.screen", argv),
           "config": {"data": args.data, "variants": variants,
                      "folds": "subject_kfold(k=10, seed=0)",
                      "estimator": "build_estimator('lightgbm', seed=0, n_jobs=2), sqrt "
                                   "class weights"},
           "protocol": "subject-wise 10-fold CV (folds of benchmarks/real_features), one "
                       "lightgbm-context-style model per fold, no inner selection: a "
                       "screen, not an estimate (see real_accuracy_nested.md)",
           "variants": rows}
    L = ["# Screening feature ideas for lightgbm-context (real Sleep-EDF band powers)", "",
         f"Command: `{res['command']}`  ", f"Date: {res['date']}  ",
         f"Machine: {res['machine']}", "", res["protocol"] + ".", "",
         "| variant | what | accuracy | macro-F1 | kappa | F1 N3 | F1 R | worst fold | "
         "paired vs base (points, folds better) |", "|---|---|---|---|---|---|---|---|---|"]
    for v, r in rows.items():
        pv = r["paired_vs_base"]
        L.append(f"| {v} | {r['description']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
                 f"{r['kappa']:.3f} | {r['f1']['N3']:.3f} | {r['f1']['R']:.3f} | "
                 f"{r['worst_fold']:.3f} | " + ("" if pv is None else
                 f"{pv['mean']:+.2f} ± {pv['sd']:.2f} ({pv['better']}/10)") + " |")
    write_json_atomic(RESULTS / "real_accuracy_screen.json", res)
    write_text_atomic(RESULTS / "real_accuracy_screen.md", "\n".join(L) + "\n")
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
