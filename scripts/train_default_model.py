"""Train the shipped ``default`` staging model on the real Sleep-EDF band-power set.

Usage::

    python scripts/train_default_model.py [--data ../shared/data/sleepedf_bandpower]
        [--model lightgbm-context] [--cv-folds 5] [--out src/hypnoscope/data/models]

Trains ``--model`` (a name of ``hypnoscope.models.MODEL_REGISTRY``) on all 59 subjects /
115 nights of the band-power set and writes ``default.joblib`` and its model card
``default.json``. The card's cross-validated metrics come from the feature benchmark
(``benchmarks/results/real_features.json``) when it holds this model, else from a
subject-wise ``--cv-folds``-fold cross-validation run here (both nights of a subject in
the same fold).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _bench_metrics(model: str) -> dict | None:
    """Subject-wise CV metrics of ``model`` from the benchmark results, if present."""
    for name in ("real_features.json", "ssnet_real.json"):
        path = ROOT / "benchmarks" / "results" / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        found = _find_model(data, model)
        if found is not None:
            return {"source": f"benchmarks/results/{name}", **found}
    return None


def _find_model(data, model: str):
    """Find the result block of ``model`` in a benchmark JSON (tolerant of layout)."""
    if isinstance(data, dict):
        for key in ("results", "models"):
            if key in data:
                hit = _find_model(data[key], model)
                if hit is not None:
                    return hit
        if model in data and isinstance(data[model], dict):
            return data[model]
        if data.get("model") == model or data.get("name") == model:
            return data
    if isinstance(data, list):
        for item in data:
            hit = _find_model(item, model)
            if hit is not None:
                return hit
    return None


def cross_validate(nights, model_name: str, folds: int, seed: int) -> dict:
    """Subject-wise k-fold CV; pooled and per-fold accuracy / macro-F1 / kappa."""
    from hypnoscope.evaluation import evaluate
    from hypnoscope.models import make_model
    from hypnoscope.splits import subject_kfold

    per_fold, y_all, p_all = [], [], []
    for fold in subject_kfold(nights, k=folds, seed=seed):
        train, _, test = fold.select(nights)
        t = time.time()
        mdl = make_model(model_name).fit(train)
        yt = np.concatenate([n.y for n in test])
        yp = np.concatenate([mdl.predict(n) for n in test])
        res = evaluate(yt, yp, n_classes=5)
        per_fold.append({k: res[k] for k in ("accuracy", "macro_f1", "kappa")})
        y_all.append(yt)
        p_all.append(yp)
        print(f"{fold.name}: acc {res['accuracy']:.3f} MF1 {res['macro_f1']:.3f} "
              f"kappa {res['kappa']:.3f} ({time.time() - t:.0f} s)", flush=True)
    pooled = evaluate(np.concatenate(y_all), np.concatenate(p_all), n_classes=5)
    keys = ("accuracy", "macro_f1", "kappa")
    return {"source": f"scripts/train_default_model.py ({folds}-fold subject-wise CV, "
                      f"seed {seed})",
            "pooled": {k: pooled[k] for k in keys} | {"per_class_f1": pooled["per_class_f1"]},
            "mean_over_folds": {k: float(np.mean([f[k] for f in per_fold])) for k in keys},
            "sd_over_folds": {k: float(np.std([f[k] for f in per_fold], ddof=1)) for k in keys},
            "folds": per_fold}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sleepedf_bandpower"))
    ap.add_argument("--model", default="lightgbm-context")
    ap.add_argument("--name", default="default")
    ap.add_argument("--cv-folds", type=int, default=5)
    ap.add_argument("--no-cv", action="store_true", help="only use benchmark metrics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "src" / "hypnoscope" / "data" / "models"))
    args = ap.parse_args(argv)

    from hypnoscope import bandpower
    from hypnoscope.datasets import describe_nights, load_feature_dir
    from hypnoscope.models import make_model
    from hypnoscope.utils import seed_everything, write_json_atomic

    seed_everything(args.seed)
    nights = load_feature_dir(args.data)
    desc = describe_nights(nights)
    print(f"{desc['n_subjects']} subjects, {desc['n_nights']} nights, "
          f"{desc['n_scored_epochs']} scored epochs", flush=True)
    metrics = _bench_metrics(args.model)
    if metrics is None and not args.no_cv:
        metrics = cross_validate(nights, args.model, args.cv_folds, args.seed)
    t = time.time()
    mdl = make_model(args.model).fit(nights)
    fit_sec = time.time() - t
    card = {
        "name": args.name,
        "summary": (f"{args.model} on 30 band-power features (Fpz-Cz, Pz-Oz, EOG horizontal "
                    "x 5 bands, log-absolute + relative), trained on real Sleep-EDF-78 "
                    "cassette nights"),
        "trained_on": "real data (PhysioNet Sleep-EDF Expanded, sleep-cassette subset)",
        "architecture": args.model,
        "input": {"representation": "bandpower", "channels": list(bandpower.CHANNEL_LAYOUT),
                  "roles": list(bandpower.CHANNEL_ROLES),
                  "feature_names": list(bandpower.FEATURE_NAMES),
                  "settings": bandpower.SETTINGS},
        "channels_expected": ("two EEG channels (EEG Fpz-Cz and EEG Pz-Oz, or the nearest "
                              "frontal and parieto-occipital derivations) and one EOG channel "
                              "(EOG horizontal, or the nearest EOG); EMG is not used"),
        "output": {"classes": ["W", "N1", "N2", "N3", "R"], "epoch_sec": 30.0},
        "training_data": {
            "dataset": "Sleep-EDF Expanded (sleep-edfx 1.0.0), sleep-cassette study",
            "licence": "ODC-By 1.0; cite Kemp et al., IEEE TBME 47(9) 2000 and Goldberger "
                       "et al., Circulation 101(23) 2000",
            "n_subjects": desc["n_subjects"], "n_nights": desc["n_nights"],
            "n_epochs": desc["n_epochs"], "n_scored_epochs": desc["n_scored_epochs"],
            "epochs_per_class": desc["epochs_per_class"],
            "preprocessing": "nights cropped to 30 min of wake around the sleep period; "
                             "see input.settings",
        },
        "cross_validation": metrics,
        "limits": [
            "no EMG input: REM vs wake relies on EEG/EOG only",
            "trained on the Sleep-EDF cassette population (healthy community-dwelling "
            "adults aged 25-101, ambulatory recordings in the home, 1987-1991); "
            "clinical populations and other montages may perform worse",
            "band-power features only (no waveform detail such as spindles or K-complexes "
            "beyond the sigma band)",
            "scored with R&K rules (stages 3 and 4 merged into N3)",
            "expects 30-s epochs from the recording start; recordings are resampled to "
            "100 Hz",
        ],
        "fit_seconds": round(fit_sec, 1),
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None
                                                        else sys.argv[1:])),
        "machine": f"{platform.machine()} {platform.system()} python "
                   f"{platform.python_version()}",
    }
    mdl.describe_training(nights, card=card)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = mdl.save(out / f"{args.name}.joblib")
    card["file_size_mb"] = round(path.stat().st_size / 1e6, 2)
    write_json_atomic(out / f"{args.name}.json", card)
    print(f"wrote {path} ({card['file_size_mb']} MB) and its model card", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
