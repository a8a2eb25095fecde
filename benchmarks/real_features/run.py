"""Feature models on the real Sleep-EDF band-power set: subject-wise 10-fold CV.

SVM, Random Forest and LightGBM, each without and with temporal context (per-night robust
z-scoring, centred and past-only rolling means, rolling SD, neighbour differences), on
the 59 subjects / 115 nights of ``../shared/data/sleepedf_bandpower`` (features
(n, 3, 10) flattened to 30). Folds: :func:`hypnoscope.evaluation.splits.subject_kfold` (k=10,
seed 0) - the same folds as ``benchmarks/ssnet_real``; the assignment is (re)written to
``benchmarks/results/real_folds.json`` and checked against it.

Reported per model: pooled and per-fold (mean ± sd, and every fold) accuracy, macro-F1,
Cohen's kappa, per-class F1, training and inference time; 5-class, and 3-class (W/NREM/R)
from the 5-class probabilities summed per group, plus natively trained 3-class models
(``--native3``). "+HMM" rows post-process the context models' probabilities with a
forward-backward pass over the stage-transition matrix of the training nights (no test
information). Also the MSMAE-CNN paper's epoch-level stratified 80/20 split -
SUBJECT-LEAKY - for the same models.

Incremental: every (model, fold) result (test labels and probabilities) is stored in
``--state-dir`` under a hash of its configuration
(:func:`hypnoscope.evaluation.cross_validation.cross_validate`), and the JSON/markdown results are
re-rendered after every fold, so an interrupted run resumes where it stopped.

Usage (from the repository root)::

    nice -n 10 env OMP_NUM_THREADS=1 python -m benchmarks.real_features.run
    python -m benchmarks.real_features.run --max-folds 1 --no-leaky --name smoke
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    BANDPOWER_DIR,
    RESULTS,
    ROOT,
    command_line,
    load_bandpower,
    machine_line,
    now_utc,
    write_results,
)
from hypnoscope.evaluation.cross_validation import cross_validate
from hypnoscope.evaluation.metrics import aggregate, evaluate
from hypnoscope.evaluation.splits import LEAKY_NOTE, stratified_epoch_split, subject_kfold
from hypnoscope.models.feature_classifiers import (
    build_estimator,
    hmm_smooth,
    make_feature_model,
    night_feature_matrix,
    resolve_class_weight,
    transition_matrix,
)
from hypnoscope.stages import proba_to_3class, to_3class
from hypnoscope.utils.files import atomic_path, write_json_atomic
from hypnoscope.utils.runtime import progress

DEFAULT_STATE = ROOT / "benchmarks" / "real_features" / ".cache"
MODELS = ("svm", "rf", "lightgbm", "svm-context", "rf-context", "lightgbm-context")
SCALARS = ("accuracy", "macro_f1", "kappa")
TARGET = {"accuracy": 0.80, "macro_f1": 0.73, "kappa": 0.72}
STATE_VERSION = 1


def fold_assignment(nights, folds) -> dict:
    """JSON-able description of the folds (subject -> fold index, test subjects/nights)."""
    return {
        "function": "hypnoscope.evaluation.splits.subject_kfold",
        "subject_to_fold": {s: i for i, f in enumerate(folds) for s in f.test_subjects},
        "folds": [{"name": f.name, "test_subjects": list(f.test_subjects),
                   "test_nights": [nights[i].night_id for i in f.test]} for f in folds],
    }


def check_folds(nights, folds, seed: int, k: int) -> None:
    """Write ``real_folds.json``, or check that the existing one holds the same folds."""
    path = RESULTS / "real_folds.json"
    new = {"seed": seed, "k": k, "data": "sleepedf_bandpower",
           **fold_assignment(nights, folds)}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("subject_to_fold") != new["subject_to_fold"]:
            raise SystemExit(f"{path} holds a different fold assignment than "
                             f"subject_kfold(k={k}, seed={seed}); refusing to overwrite it")
        return
    write_json_atomic(path, new)


def metrics(y5: np.ndarray, p: np.ndarray, n_classes: int) -> dict:
    """evaluate() of probabilities ``p`` (5 or 3 columns) against 5-class labels."""
    if n_classes == 5:
        return evaluate(y5, p.argmax(1), n_classes=5)
    p3 = p if p.shape[1] == 3 else proba_to_3class(p)
    return evaluate(to_3class(y5), p3.argmax(1), n_classes=3)


def slim(result: dict) -> dict:
    keep = ("accuracy", "macro_f1", "kappa", "per_class_f1", "confusion_matrix", "n_epochs",
            "labels", "n_classes", "recall", "precision", "specificity")
    return {k: result[k] for k in keep if k in result}


def model_config(name: str, n_classes: int, seed: int) -> dict:
    m = make_feature_model(name, n_classes=n_classes, seed=seed)
    return {"name": name, "n_classes": n_classes, "config": m.config}


def state_file(state_dir: Path, tag: str, cfg: dict, extra: dict) -> Path:
    blob = json.dumps({"v": STATE_VERSION, "cfg": cfg, **extra}, sort_keys=True,
                      default=str)
    h = hashlib.sha1(blob.encode()).hexdigest()[:12]
    safe = tag.replace(" ", "_").replace("/", "of")
    return state_dir / f"{safe}_{h}.npz"


def run_fold(name: str, n_classes: int, fold, nights, seed: int, state_dir: Path,
             cache_key: str) -> dict:
    """Train on the fold's training nights, predict its test nights (float32
    probabilities); cached in ``state_dir`` by
    :func:`~hypnoscope.evaluation.cross_validation.cross_validate`."""
    rec = cross_validate(nights, lambda _fold: make_feature_model(name, n_classes=n_classes,
                                                                  seed=seed),
                         folds=[fold], cache_dir=state_dir, cache_key=cache_key,
                         proba_dtype=np.float32, score=lambda y, p: {},
                         desc=f"{name} {fold.name}").records[0]
    return {"y": rec.y.astype(np.int16), "p": rec.proba, "lengths": rec.lengths,
            "train_s": np.array(rec.train_s), "infer_s": np.array(rec.infer_s)}


def hmm_variant(rec: dict, transmat: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Forward-backward smoothing of a fold's stored probabilities, night by night."""
    bounds = np.cumsum(np.r_[0, rec["lengths"]])
    return np.concatenate([hmm_smooth(rec["p"][a:b], transmat, prior)
                           for a, b in zip(bounds[:-1], bounds[1:], strict=True)])


def summarise_cv(per_variant: dict[str, list[dict]]) -> dict:
    """Pooled, per-fold aggregate and every fold's metrics of each variant."""
    out = {}
    for v, recs in per_variant.items():
        if not recs:
            continue
        y = np.concatenate([r["y"] for r in recs])
        p = np.concatenate([r["p"] for r in recs])
        entry = {"n_folds": len(recs),
                 "train_time_s": {"mean": float(np.mean([r["train_s"] for r in recs])),
                                  "per_fold": [float(r["train_s"]) for r in recs]},
                 "inference_time_s_per_night": float(np.mean([r["infer_s"] for r in recs]))}
        for k in ((5, 3) if p.shape[1] == 5 else (3,)):
            folds = [slim(metrics(r["y"], r["p"], k)) for r in recs]
            entry[f"{k}class"] = {
                "pooled": slim(metrics(y, p, k)),
                "per_fold": aggregate(folds),
                "folds": [{m: f[m] for m in (*SCALARS, "per_class_f1", "n_epochs")}
                          for f in folds],
            }
        out[v] = entry
    return out


def fmt(x: float) -> str:
    return f"{x:.3f}"


def pm(entry: dict, key: str) -> str:
    a = entry["per_fold"][key]
    return f"{a['mean']:.3f} ± {a['sd']:.3f}" if a["n"] > 1 else f"{a['mean']:.3f}"


def markdown(res: dict) -> str:
    cfg = res["config"]
    nf = max((e["n_folds"] for e in res["cv"].values()), default=0)
    lines = [
        "# Feature models on real Sleep-EDF band powers",
        "",
        f"Date: {res['date']} · machine: {res['machine']} · command: `{res['command']}`",
        "",
        f"Data: {res['data']['n_subjects']} subjects, {res['data']['n_nights']} nights, "
        f"{res['data']['n_scored_epochs']} scored epochs (Sleep-EDF Expanded, sleep-cassette; "
        "Kemp et al. 2000, Goldberger et al. 2000; ODC-By). Features: 3 channels x 10 "
        "log/relative band powers (flattened to 30; context models: 300 columns). "
        f"Subject-wise {cfg['n_folds']}-fold CV ({cfg['fold_function']}, seed {cfg['seed']}; "
        f"{nf} of {cfg['n_folds']} folds done); folds in "
        "`benchmarks/results/real_folds.json`, every fold's metrics in the JSON. "
        f"Class weighting: {cfg['class_weight']}. SVM: {cfg['svm_note']}. "
        f"Single-threaded (n_jobs=1), niced, on a shared 2-core machine: times are indicative.",
        "",
        "Pooled over all test epochs; ± = sd over folds. 3-class = W/NREM/R from the summed "
        "5-class probabilities unless marked '3-class trained'. +HMM = forward-backward "
        "smoothing with the training folds' stage-transition matrix.",
        "",
        "## Subject-wise CV, 5 classes",
        "",
        "| model | folds | accuracy | macro-F1 | kappa | kappa per fold | F1 W | F1 N1 | F1 N2 "
        "| F1 N3 | F1 R | train s/fold | infer s/night |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in res["cv"].items():
        if "5class" not in e:
            continue
        m = e["5class"]["pooled"]
        f1 = m["per_class_f1"]
        lines.append(f"| {name} | {e['n_folds']} | {fmt(m['accuracy'])} | "
                     f"{fmt(m['macro_f1'])} | {fmt(m['kappa'])} | {pm(e['5class'], 'kappa')} | "
                     + " | ".join(fmt(f1[c]) for c in ("W", "N1", "N2", "N3", "R"))
                     + f" | {e['train_time_s']['mean']:.1f} | "
                       f"{e['inference_time_s_per_night']:.3f} |")
    lines += ["", "## Subject-wise CV, 3 classes (W / NREM / R)", "",
              "| model | folds | accuracy | macro-F1 | kappa | F1 W | F1 NREM | F1 R |",
              "|---|---|---|---|---|---|---|---|"]
    for name, e in res["cv"].items():
        m = e["3class"]["pooled"]
        f1 = m["per_class_f1"]
        lines.append(f"| {name} | {e['n_folds']} | {fmt(m['accuracy'])} | "
                     f"{fmt(m['macro_f1'])} | {fmt(m['kappa'])} | "
                     + " | ".join(fmt(f1[c]) for c in ("W", "NREM", "R")) + " |")
    if res.get("leaky"):
        lines += ["", "## LEAKY epoch-level stratified 80/20 split (MSMAE-CNN paper)", "",
                  f"**Subject-leaky**: {LEAKY_NOTE}. Shown only to measure the inflation.", "",
                  "| model | LEAKY acc | LEAKY MF1 | LEAKY kappa | subject-wise acc | "
                  "inflation (acc) |", "|---|---|---|---|---|---|"]
        for name, e in res["leaky"].items():
            m = e["5class"]
            sw = res["cv"].get(name, {}).get("5class", {}).get("pooled", {})
            acc = sw.get("accuracy", float("nan"))
            lines.append(f"| {name} (LEAKY) | {fmt(m['accuracy'])} | {fmt(m['macro_f1'])} | "
                         f"{fmt(m['kappa'])} | {fmt(acc)} | {m['accuracy'] - acc:+.3f} |")
    b = res.get("best_subjectwise")
    if b:
        lines += ["", f"**Best subject-wise model: `{b['model']}`** (factory options "
                      f"`{json.dumps(b['options'])}`, {b['n_folds']} folds): 5-class "
                      f"accuracy {fmt(b['accuracy'])}, macro-F1 {fmt(b['macro_f1'])}, "
                      f"kappa {fmt(b['kappa'])}; 3-class accuracy "
                      f"{fmt(b['3class']['accuracy'])}. Target (accuracy >= 0.80, "
                      f"macro-F1 >= 0.73, kappa >= 0.72): "
                      f"{'met' if b['target_met'] else 'NOT met'}."]
    return "\n".join(lines) + "\n"


def best_entry(cv: dict) -> dict | None:
    """The context variant with the highest pooled 5-class kappa."""
    ctx = {k: v for k, v in cv.items() if "context" in k and "5class" in v}
    if not ctx:
        return None
    best = max(ctx, key=lambda k: (ctx[k]["n_folds"], ctx[k]["5class"]["pooled"]["kappa"]))
    e = ctx[best]
    m = e["5class"]["pooled"]
    base = best.split("+")[0].split(" ")[0]
    options = {"n_classes": 5}
    if best.endswith("+HMM"):
        options["smoothing"] = "hmm"
    return {"model": best, "factory": "hypnoscope.models.feature_classifiers:make_feature_model",
            "name": base, "options": options, "n_folds": e["n_folds"],
            **{k: m[k] for k in SCALARS}, "per_class_f1": m["per_class_f1"],
            "per_fold": {k: e["5class"]["per_fold"][k] for k in SCALARS},
            "3class": {k: e["3class"]["pooled"][k] for k in (*SCALARS, "per_class_f1")},
            "train_time_s_per_fold": e["train_time_s"]["mean"],
            "inference_time_s_per_night": e["inference_time_s_per_night"],
            "target": TARGET,
            "target_met": all(m[k] >= TARGET[k] for k in SCALARS)}


def run_leaky(nights, name: str, seed: int, path: Path, test_size: float = 0.2) -> dict:
    """MSMAE-CNN epoch-level stratified 80/20 split (SUBJECT-LEAKY) of one model."""
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    split = stratified_epoch_split(nights, test=test_size, seed=seed)
    model = make_feature_model(name, n_classes=5, seed=seed)
    mats = [night_feature_matrix(n, model.context)[0] for n in nights]
    Xtr = np.vstack([X[m] for X, m in zip(mats, split.train, strict=True)])
    ytr = np.concatenate([n.y[m] for n, m in zip(nights, split.train, strict=True)])
    Xte = np.vstack([X[m] for X, m in zip(mats, split.test, strict=True)])
    yte = np.concatenate([n.y[m] for n, m in zip(nights, split.test, strict=True)])
    est = build_estimator(model.algorithm, seed=seed,
                          class_weight=resolve_class_weight(model.class_weight, ytr, 5))
    t0 = time.perf_counter()
    est.fit(Xtr, ytr)
    t_train = time.perf_counter() - t0
    p = np.zeros((len(Xte), 5))
    p[:, est.classes_.astype(int)] = est.predict_proba(Xte)
    rec = {"y": yte.astype(np.int16), "p": p.astype(np.float32), "train_s": np.array(t_train)}
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **rec)
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(BANDPOWER_DIR))
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--native3", nargs="*", default=["lightgbm-context"], choices=MODELS,
                    help="models also trained natively on 3 classes (after the 5-class CV "
                         "and the leaky split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-leaky", action="store_true", help="skip the leaky 80/20 split")
    ap.add_argument("--state-dir", default=str(DEFAULT_STATE),
                    help="where finished (model, fold) results are kept for resuming")
    ap.add_argument("--name", default="real_features", help="results file stem")
    args = ap.parse_args(argv)

    nights = load_bandpower(args.data)
    folds = subject_kfold(nights, k=args.folds, seed=args.seed)
    check_folds(nights, folds, args.seed, args.folds)
    run_folds = folds[: args.max_folds] if args.max_folds else folds
    state = Path(args.state_dir)
    svm_cap = build_estimator("svm").max_per_class
    res: dict = {
        "benchmark": "real_features",
        "date": now_utc(),
        "machine": machine_line(),
        "command": command_line("benchmarks.real_features.run", argv,
                                "nice -n 10 env OMP_NUM_THREADS=1 python"),
        "config": {"n_folds": args.folds, "max_folds": args.max_folds, "seed": args.seed,
                   "models": args.models, "native3": args.native3, "n_jobs": 1,
                   "fold_function": f"subject_kfold(k={args.folds}, seed={args.seed})",
                   "class_weight": make_feature_model("lightgbm").class_weight,
                   "model_configs": {m: model_config(m, 5, args.seed)["config"]
                                     for m in args.models},
                   "svm_note": f"RBF SVC trained on a class-stratified random subsample of "
                               f"at most {svm_cap} epochs per class; "
                               "probabilities from a logistic calibration on as many other "
                               "training epochs",
                   "leaky_split": "stratified_epoch_split(test=0.2, seed) - SUBJECT-LEAKY"},
        "data": {"path": "../shared/data/sleepedf_bandpower",
                 "n_subjects": len({n.subject_id for n in nights}), "n_nights": len(nights),
                 "n_scored_epochs": int(sum(n.scored.sum() for n in nights))},
    }
    variants: dict[str, list[dict]] = {}
    for m in args.models:
        variants[m] = []
        if m.endswith("-context"):
            variants[f"{m}+HMM"] = []
    for m in args.native3:
        variants[f"{m} (3-class trained)"] = []
    leaky: dict[str, dict] = {}

    def render() -> None:
        res["cv"] = summarise_cv(variants)
        b = best_entry(res["cv"])
        if b:
            res["best_subjectwise"] = b
        if leaky:
            res["leaky"] = leaky
            res["leaky_note"] = LEAKY_NOTE
        write_results(args.name, res, markdown(res))

    def do_fold(fold, name: str, k: int) -> None:
        train = [nights[i] for i in fold.train]
        cfg = model_config(name, k, args.seed)
        key = json.dumps({"v": STATE_VERSION, "cfg": cfg, "data": args.data}, sort_keys=True,
                         default=str)
        rec = run_fold(name, k, fold, nights, args.seed, state, f"{name}_{k}_{key}")
        if k == 3:
            variants[f"{name} (3-class trained)"].append(rec)
            return
        variants[name].append(rec)
        acc = metrics(rec["y"], rec["p"], 5)["accuracy"]
        msg = f"{fold.name} {name}: train {float(rec['train_s']):.1f}s acc {acc:.3f}"
        if name.endswith("-context"):
            wy = np.concatenate([n.y for n in train])
            cw = resolve_class_weight(make_feature_model(name).class_weight, wy[wy >= 0], 5)
            counts = np.bincount(wy[wy >= 0], minlength=5).astype(float)
            prior = counts * (np.array([cw[c] for c in range(5)]) if cw else 1.0)
            prior = prior / prior.sum()
            ph = hmm_variant(rec, transition_matrix(train, 5), prior)
            variants[f"{name}+HMM"].append({**rec, "p": ph})
            msg += f", +HMM acc {metrics(rec['y'], ph, 5)['accuracy']:.3f}"
        print(msg, flush=True)

    for fold in progress(run_folds, desc="folds", unit="fold"):
        for name in args.models:
            do_fold(fold, name, 5)
        render()
    if not args.no_leaky:
        for name in progress(args.models, desc="leaky", unit="model"):
            cfg = model_config(name, 5, args.seed)
            rec = run_leaky(nights, name, args.seed,
                            state_file(state, f"leaky_{name}", cfg, {"data": args.data}))
            leaky[name] = {"5class": slim(metrics(rec["y"], rec["p"], 5)),
                           "3class": slim(metrics(rec["y"], rec["p"], 3)),
                           "train_time_s": float(rec["train_s"]), "leaky": True}
            print(f"LEAKY {name}: acc {leaky[name]['5class']['accuracy']:.3f}", flush=True)
            render()
    for fold in progress(run_folds if args.native3 else [], desc="3-class", unit="fold"):
        for name in args.native3:
            do_fold(fold, name, 3)
        render()
    render()
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
