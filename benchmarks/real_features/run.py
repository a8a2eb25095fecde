"""Feature models on the real Sleep-EDF band-power set: subject-wise 10-fold CV.

SVM, Random Forest and LightGBM, each without and with temporal context (per-night robust
z-scoring, centred and past-only rolling means, rolling SD, neighbour differences), on
the 59 subjects / 115 nights of ``../shared/data/sleepedf_bandpower`` (features
(n, 3, 10) flattened to 30). Folds: :func:`hypnoscope.splits.subject_kfold` (k=10,
seed 0) - the same folds as ``benchmarks/ssnet_real``; the assignment is saved to
``benchmarks/results/real_folds.json``.

Reported per model: pooled and per-fold mean ± sd of accuracy, macro-F1, Cohen's kappa,
per-class F1, training and inference time; 5-class, and 3-class (W/NREM/R) from the
5-class probabilities summed per group (plus a natively trained 3-class LightGBM-context).
"+HMM" rows post-process the context models' probabilities with a forward-backward pass
over the stage-transition matrix of the training nights (no test information).
Also the MSMAE-CNN paper's epoch-level stratified 80/20 split - SUBJECT-LEAKY - for the
same models.

Usage::

    nice -n 10 python benchmarks/real_features/run.py             # everything (~1 h, 2 cores)
    python benchmarks/real_features/run.py --max-folds 1 --no-leaky --name smoke
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np

from hypnoscope.datasets import load_feature_dir
from hypnoscope.evaluation import aggregate, evaluate
from hypnoscope.models.feature_classifiers import (
    build_estimator,
    hmm_smooth,
    make_feature_model,
    night_feature_matrix,
    transition_matrix,
)
from hypnoscope.splits import LEAKY_NOTE, stratified_epoch_split, subject_kfold
from hypnoscope.stages import proba_to_3class, to_3class
from hypnoscope.utils import progress, write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sleepedf_bandpower"
MODELS = ("svm", "rf", "lightgbm", "svm-context", "rf-context", "lightgbm-context")
SCALARS = ("accuracy", "macro_f1", "kappa")


def fold_assignment(nights, folds) -> dict:
    """JSON-able description of the folds (subject -> fold index, test subjects/nights)."""
    return {
        "function": "hypnoscope.splits.subject_kfold",
        "subject_to_fold": {s: i for i, f in enumerate(folds) for s in f.test_subjects},
        "folds": [{"name": f.name, "test_subjects": list(f.test_subjects),
                   "test_nights": [nights[i].night_id for i in f.test]} for f in folds],
    }


def metrics(y5: np.ndarray, p5: np.ndarray, n_classes: int) -> dict:
    """evaluate() on 5-class probabilities (3-class: summed probabilities)."""
    if n_classes == 5:
        return evaluate(y5, p5.argmax(1), n_classes=5)
    p3 = p5 if p5.shape[1] == 3 else proba_to_3class(p5)
    return evaluate(to_3class(y5), p3.argmax(1), n_classes=3)


def slim(result: dict) -> dict:
    keep = ("accuracy", "macro_f1", "kappa", "per_class_f1", "confusion_matrix", "n_epochs",
            "labels", "n_classes", "recall", "precision", "specificity")
    return {k: result[k] for k in keep if k in result}


def run_cv(nights, folds, models, seed, n_jobs, native3) -> dict:
    """Subject-wise CV; returns per-model pooled/per-fold results and timings."""
    rows: dict[str, dict] = {}
    variants = list(models) + [f"{m}+HMM" for m in models if m.endswith("-context")]
    variants += [f"{m} (3-class trained)" for m in native3]
    for v in variants:
        rows[v] = {"y": [], "p": [], "folds5": [], "folds3": [], "train_s": [], "infer_s": [],
                   "n_test_nights": 0}
    for fold in progress(folds, desc="folds", unit="fold"):
        train, _, test = fold.select(nights)
        transmat = {5: transition_matrix(train, 5), 3: transition_matrix(train, 3)}
        jobs = [(m, 5) for m in models] + [(m, 3) for m in native3]
        for name, k in jobs:
            model = make_feature_model(name, n_classes=k, seed=seed, n_jobs=n_jobs)
            t0 = time.perf_counter()
            model.fit(train)
            t_train = time.perf_counter() - t0
            t0 = time.perf_counter()
            probas = [model.predict_proba(n) for n in test]
            t_inf = (time.perf_counter() - t0) / len(test)
            y = np.concatenate([n.y for n in test])
            p = np.concatenate(probas)
            key = name if k == 5 else f"{name} (3-class trained)"
            outs = [(key, p, t_inf)]
            if k == 5 and name.endswith("-context"):
                t0 = time.perf_counter()
                ph = np.concatenate([hmm_smooth(q, transmat[5], np.full(5, 0.2))
                                     for q in probas])
                t_hmm = (time.perf_counter() - t0) / len(test)
                outs.append((f"{name}+HMM", ph, t_inf + t_hmm))
            for vkey, pv, ti in outs:
                r = rows[vkey]
                r["y"].append(y)
                r["p"].append(pv)
                r["train_s"].append(t_train)
                r["infer_s"].append(ti)
                r["n_test_nights"] += len(test)
                r["folds5"].append(slim(metrics(y, pv, 5)) if pv.shape[1] == 5 else None)
                r["folds3"].append(slim(metrics(y, pv, 3)))
            accs = [f"{vk} acc {metrics(y, pv, pv.shape[1])['accuracy']:.3f}"
                    for vk, pv, _ in outs]
            print(f"{fold.name} {key}: train {t_train:.1f}s, " + ", ".join(accs), flush=True)
    out = {}
    for v, r in rows.items():
        if not r["y"]:
            continue
        y, p = np.concatenate(r["y"]), np.concatenate(r["p"])
        entry = {
            "train_time_s": {"mean": float(np.mean(r["train_s"])),
                             "per_fold": [float(t) for t in r["train_s"]]},
            "inference_time_s_per_night": float(np.mean(r["infer_s"])),
            "3class": {"pooled": slim(metrics(y, p, 3)),
                       "per_fold": aggregate(r["folds3"])},
        }
        if p.shape[1] == 5:
            entry["5class"] = {"pooled": slim(metrics(y, p, 5)),
                               "per_fold": aggregate(r["folds5"])}
        out[v] = entry
    return out


def run_leaky(nights, models, seed, n_jobs, test_size=0.2) -> dict:
    """MSMAE-CNN epoch-level stratified 80/20 split (SUBJECT-LEAKY)."""
    split = stratified_epoch_split(nights, test=test_size, seed=seed)
    out = {}
    for name in progress(models, desc="leaky", unit="model"):
        model = make_feature_model(name, n_classes=5, seed=seed)
        mats = [night_feature_matrix(n, model.context)[0] for n in nights]
        Xtr = np.vstack([X[m] for X, m in zip(mats, split.train, strict=True)])
        ytr = np.concatenate([n.y[m] for n, m in zip(nights, split.train, strict=True)])
        Xte = np.vstack([X[m] for X, m in zip(mats, split.test, strict=True)])
        yte = np.concatenate([n.y[m] for n, m in zip(nights, split.test, strict=True)])
        est = build_estimator(model.algorithm, seed=seed, n_jobs=n_jobs)
        t0 = time.perf_counter()
        est.fit(Xtr, ytr)
        t_train = time.perf_counter() - t0
        p = np.zeros((len(Xte), 5))
        p[:, est.classes_.astype(int)] = est.predict_proba(Xte)
        out[name] = {"5class": slim(metrics(yte, p, 5)), "3class": slim(metrics(yte, p, 3)),
                     "train_time_s": t_train, "leaky": True}
        print(f"LEAKY {name}: acc {out[name]['5class']['accuracy']:.3f}", flush=True)
    return out


def fmt(x: float) -> str:
    return f"{x:.3f}"


def markdown(res: dict) -> str:
    cfg = res["config"]
    lines = [
        "# Feature models on real Sleep-EDF band powers",
        "",
        f"Date: {res['date']} · machine: {res['machine']} · command: `{res['command']}`",
        "",
        f"Data: {res['data']['n_subjects']} subjects, {res['data']['n_nights']} nights, "
        f"{res['data']['n_scored_epochs']} scored epochs (Sleep-EDF Expanded, sleep-cassette; "
        "Kemp et al. 2000, Goldberger et al. 2000; ODC-By). Features: 3 channels x 10 "
        "log/relative band powers. "
        f"Subject-wise {cfg['n_folds']}-fold CV ({cfg['fold_function']}, seed {cfg['seed']}"
        f"{', first ' + str(cfg['max_folds']) + ' folds only' if cfg['max_folds'] else ''}); "
        "folds in `benchmarks/results/real_folds.json`. Class weighting: balanced.",
        "",
        "Pooled over all test epochs (mean ± sd over folds in the JSON). 3-class = W/NREM/R "
        "from the summed 5-class probabilities unless marked '3-class trained'. "
        "+HMM = forward-backward smoothing with the training folds' stage-transition matrix.",
        "",
        "## Subject-wise CV, 5 classes",
        "",
        "| model | accuracy | macro-F1 | kappa | F1 W | F1 N1 | F1 N2 | F1 N3 | F1 R "
        "| train s/fold | infer s/night |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in res["cv"].items():
        if "5class" not in e:
            continue
        m = e["5class"]["pooled"]
        f1 = m["per_class_f1"]
        lines.append(f"| {name} | {fmt(m['accuracy'])} | {fmt(m['macro_f1'])} | "
                     f"{fmt(m['kappa'])} | " + " | ".join(fmt(f1[c]) for c in
                                                         ("W", "N1", "N2", "N3", "R"))
                     + f" | {e['train_time_s']['mean']:.1f} | "
                       f"{e['inference_time_s_per_night']:.3f} |")
    lines += ["", "## Subject-wise CV, 3 classes (W / NREM / R)", "",
              "| model | accuracy | macro-F1 | kappa | F1 W | F1 NREM | F1 R |",
              "|---|---|---|---|---|---|---|"]
    for name, e in res["cv"].items():
        m = e["3class"]["pooled"]
        f1 = m["per_class_f1"]
        lines.append(f"| {name} | {fmt(m['accuracy'])} | {fmt(m['macro_f1'])} | "
                     f"{fmt(m['kappa'])} | " + " | ".join(fmt(f1[c]) for c in
                                                         ("W", "NREM", "R")) + " |")
    if res.get("leaky"):
        lines += ["", "## LEAKY epoch-level stratified 80/20 split (MSMAE-CNN paper)", "",
                  f"**Subject-leaky**: {LEAKY_NOTE}. Shown only to measure the inflation.", "",
                  "| model | LEAKY acc | LEAKY MF1 | LEAKY kappa | subject-wise acc | "
                  "inflation (acc) |", "|---|---|---|---|---|---|"]
        for name, e in res["leaky"].items():
            m = e["5class"]
            sw = res["cv"].get(name, {}).get("5class", {}).get("pooled", {})
            acc = sw.get("accuracy", float("nan"))
            lines.append(f"| {name} | {fmt(m['accuracy'])} | {fmt(m['macro_f1'])} | "
                         f"{fmt(m['kappa'])} | {fmt(acc)} | {m['accuracy'] - acc:+.3f} |")
    t = res.get("target")
    if t:
        lines += ["", f"Target (best context model, subject-wise 5-class): accuracy >= 0.80, "
                      f"macro-F1 >= 0.73, kappa >= 0.72. Best: **{t['best']}** "
                      f"({fmt(t['accuracy'])} / {fmt(t['macro_f1'])} / {fmt(t['kappa'])}) - "
                      f"{'met' if t['met'] else 'NOT met'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--native3", nargs="*", default=["lightgbm-context"], choices=MODELS,
                    help="models also trained natively on 3 classes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--no-leaky", action="store_true", help="skip the leaky 80/20 split")
    ap.add_argument("--name", default="real_features", help="results file stem")
    args = ap.parse_args(argv)

    nights = load_feature_dir(args.data)
    folds = subject_kfold(nights, k=args.folds, seed=args.seed)
    write_json_atomic(RESULTS / "real_folds.json",
                      {"seed": args.seed, "k": args.folds, "data": "sleepedf_bandpower",
                       **fold_assignment(nights, folds)})
    run_folds = folds[: args.max_folds] if args.max_folds else folds
    res: dict = {
        "benchmark": "real_features",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''} "
                   f"python {platform.python_version()}".strip(),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "config": {"n_folds": args.folds, "max_folds": args.max_folds, "seed": args.seed,
                   "models": args.models, "native3": args.native3, "n_jobs": args.n_jobs,
                   "fold_function": f"subject_kfold(k={args.folds})",
                   "class_weight": "balanced"},
        "data": {"path": "../shared/data/sleepedf_bandpower",
                 "n_subjects": len({n.subject_id for n in nights}), "n_nights": len(nights),
                 "n_scored_epochs": int(sum(n.scored.sum() for n in nights))},
    }
    res["cv"] = run_cv(nights, run_folds, args.models, args.seed, args.n_jobs, args.native3)
    ctx = {k: v for k, v in res["cv"].items() if "context" in k and "5class" in v}
    if ctx:
        best = max(ctx, key=lambda k: ctx[k]["5class"]["pooled"]["kappa"])
        b = ctx[best]["5class"]["pooled"]
        res["target"] = {"best": best, **{k: b[k] for k in SCALARS},
                         "met": b["accuracy"] >= 0.80 and b["macro_f1"] >= 0.73
                         and b["kappa"] >= 0.72}
    write_json_atomic(RESULTS / f"{args.name}.json", res)
    write_text_atomic(RESULTS / f"{args.name}.md", markdown(res))
    if not args.no_leaky:
        res["leaky"] = run_leaky(nights, args.models, args.seed, args.n_jobs)
        res["leaky_note"] = LEAKY_NOTE
        write_json_atomic(RESULTS / f"{args.name}.json", res)
        write_text_atomic(RESULTS / f"{args.name}.md", markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
