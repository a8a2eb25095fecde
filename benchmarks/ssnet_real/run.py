"""SSNet on the real Sleep-EDF band-power set: subject-wise 10-fold cross-validation.

Direct 5-class SSNet (and its 3-class view) and the hierarchical 3-class SSNet (Wake vs
Sleep, then REM vs NREM on sleep epochs) on per-epoch band-power sequences of 59
subjects / 115 nights. The test folds are those of ``benchmarks/results/real_folds.json``
(written by ``benchmarks/real_features``; ``subject_kfold(k=10, seed=0)``); the
validation subjects used for checkpoint selection / early stopping are carved out of
each fold's *training* subjects (never the test fold). Next to it, on the very same
folds: LightGBM without and with temporal context trained here on train + validation
subjects (a paired reference), and the best feature model of
``benchmarks/results/real_features.json`` when that file exists.

Also reports where the hierarchy helps (REM, transition epochs), per-night sleep
statistics of the predicted minus the true hypnogram, training time per epoch and
inference time per night on this CPU.

Every finished fold is stored in ``--state-dir`` (predictions per night) and training
checkpoints are written every epoch, so a restarted run skips finished folds and resumes
an interrupted one. ``--render-only`` re-renders the tables from the stored folds (e.g.
after ``real_features.json`` appears).

The default SSNet settings (``CHOSEN``: seq_len 32, inference stride 4) were chosen on
validation subjects only by ``benchmarks.ssnet_real.explore``. An unfinished run writes
``<name>_partial.md|.json`` and never replaces a complete table. The first complete run
(seq_len 16) is shown as the "SSNet v1" row when its folds are in ``--v1-state-dir``.

Run (from the repository root)::

    nice -n 10 env OMP_NUM_THREADS=1 python -m benchmarks.ssnet_real.run
    # or share the folds between two workers, then render all finished folds:
    ... run --only-folds 0 2 4 6 8 & ... run --only-folds 1 3 5 7 9
    python -m benchmarks.ssnet_real.run --render-only
    python -m benchmarks.ssnet_real.run --max-folds 1 --epochs 1 --name ssnet_real_smoke
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    BANDPOWER_DIR,
    RESULTS,
    ROOT,
    command_line,
    load_bandpower,
    now_utc,
)
from hypnoscope.evaluation.metrics import compare_hypnograms, evaluate
from hypnoscope.evaluation.splits import _make_fold, subject_kfold, subjects_of, validation_split
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.models import make_model
from hypnoscope.models.ssnet import merge_hierarchical
from hypnoscope.stages import proba_to_3class, to_3class
from hypnoscope.utils.files import atomic_path, write_json_atomic, write_text_atomic
from hypnoscope.utils.runtime import progress

FOLDS_FILE = RESULTS / "real_folds.json"
STATS = ("total_sleep_min", "sleep_efficiency_pct", "sleep_onset_latency_min",
         "rem_latency_min", "waso_min", "rem_min", "n3_min")
#: prediction keys: 5-class arg-max, 3-class codes
V5 = ("ssnet", "ssnet_v1", "lightgbm", "lightgbm-context")
V3 = ("ssnet_as3", "ssnet-hier", "ssnet-hier_merged_argmax", "lightgbm_as3",
      "lightgbm-context_as3")
LABEL = {"ssnet": "SSNet direct 5-class", "ssnet_as3": "SSNet direct, 3-class view",
         "ssnet_v1": "SSNet v1 (seq_len 16), same folds",
         "ssnet-hier": "SSNet hierarchical 3-class (cascade)",
         "ssnet-hier_merged_argmax": "SSNet hierarchical 3-class (arg-max of merged p)",
         "lightgbm": "LightGBM (no context), same folds",
         "lightgbm-context": "LightGBM + temporal context, same folds",
         "lightgbm_as3": "LightGBM, 3-class view",
         "lightgbm-context_as3": "LightGBM + context, 3-class view"}


#: default SSNet settings, chosen on validation subjects by ``explore.py``
CHOSEN = {"seq_len": 32, "epochs": 6, "patience": 2, "normalize": "night",
          "label_smoothing": 0.0, "infer_stride": 4}
SELECTION_NOTE = ("These settings were chosen by validation-subject accuracy only "
                  "(`benchmarks/ssnet_real/explore.py`, inner validation subjects of the "
                  "training folds; see `ssnet_real_selection.md`), never on test folds.")


# --------------------------------------------------------------------------------------
# folds
# --------------------------------------------------------------------------------------
def load_folds(nights, folds_file: Path, val: float, seed: int):
    """Test subjects from ``folds_file`` (else ``subject_kfold(k=10, seed)``), with
    ``val`` of each fold's training subjects held out for validation
    (:func:`hypnoscope.evaluation.splits.validation_split` with seed ``seed + fold index``)."""
    groups = subjects_of(nights)
    if folds_file.is_file():
        spec = json.loads(folds_file.read_text())
        tests = [list(f["test_subjects"]) for f in spec["folds"]]
        source = str(folds_file.relative_to(ROOT))
    else:
        tests = [list(f.test_subjects) for f in subject_kfold(nights, k=10, seed=seed)]
        source = f"subject_kfold(k=10, seed={seed}) ({folds_file.name} absent)"
    missing = sorted(set(groups) - {s for t in tests for s in t})
    if missing:
        raise ValueError(f"{folds_file}: subjects {missing} are in no test fold")
    folds = []
    for i, test_s in enumerate(tests):
        # seeded per fold, so that the folds do not share their validation subjects
        train_s, val_s = validation_split(sorted(set(groups) - set(test_s)), val, seed + i)
        folds.append(_make_fold(groups, train_s, val_s, test_s, f"fold {i + 1}/{len(tests)}"))
    return folds, source


# --------------------------------------------------------------------------------------
# one fold
# --------------------------------------------------------------------------------------
def run_fold(i, fold, nights, args, state_dir: Path, tag: str) -> dict:
    """Train and predict one fold; returns the stored record (also written to disk)."""
    train, val, test = fold.select(nights)
    common = dict(preset=args.preset, seq_len=args.seq_len, epochs=args.epochs,
                  mode=args.mode, batch_size=args.batch_size, patience=args.patience,
                  normalize=args.normalize, label_smoothing=args.label_smoothing,
                  infer_stride=args.infer_stride, seed=args.seed,
                  num_threads=args.threads, device=args.device, resume=True)
    ckpt = state_dir / "checkpoints" / tag / f"fold{i:02d}"
    rec: dict = {"fold": fold.name, "index": i, "config_tag": tag,
                 "test_subjects": list(fold.test_subjects),
                 "val_subjects": list(fold.val_subjects), "train_s": {}, "epoch_s": {},
                 "infer_s_per_night": {}, "best_epoch": {}, "epochs_run": {}}
    arrays: dict[str, list] = {}
    models = {
        "ssnet": make_model("ssnet", n_classes=5, checkpoint_dir=str(ckpt / "ssnet"), **common),
        "ssnet-hier": make_model("ssnet-hier", n_classes=3,
                                 checkpoint_dir=str(ckpt / "ssnet-hier"), **common)}
    for name, m in models.items():
        t0 = time.perf_counter()
        m.fit(train, val)
        rec["train_s"][name] = time.perf_counter() - t0
        rec["epoch_s"][name] = [s["seconds_per_epoch"] for s in m.training_summary.values()]
        rec["best_epoch"][name] = {t: s["best_epoch"] for t, s in m.training_summary.items()}
        rec["epochs_run"][name] = {t: s["epochs_run"] for t, s in m.training_summary.items()}
    for name, m in models.items():
        t0 = time.perf_counter()
        for night in test:
            if name == "ssnet-hier":
                p = m.stage_probabilities(night)
                arrays.setdefault("hier_p1", []).append(p["wake_sleep"])
                arrays.setdefault("hier_p2", []).append(p["rem_nrem"])
            else:
                arrays.setdefault(f"p_{name}", []).append(m.predict_proba(night))
        rec["infer_s_per_night"][name] = (time.perf_counter() - t0) / len(test)
    rec["nights"] = [n.night_id for n in test]
    rec["subjects"] = [n.subject_id for n in test]
    rec["lengths"] = [n.n_epochs for n in test]
    with atomic_path(state_dir / f"fold{i:02d}.npz") as tmp:
        np.savez_compressed(tmp, y=np.concatenate([n.y for n in test]),
                            **{k: np.concatenate(v).astype(np.float32)
                               for k, v in arrays.items()})
    write_json_atomic(state_dir / f"fold{i:02d}.json", rec)
    return rec


def run_reference(i, fold, nights, name: str, seed: int, state_dir: Path) -> None:
    """A LightGBM reference on the same fold, trained on train + validation subjects
    (stored separately so that it can be added to finished folds later)."""
    from hypnoscope.models.feature_classifiers import make_feature_model

    train, val, test = fold.select(nights)
    m = make_feature_model(name, n_classes=5, seed=seed, n_jobs=1)
    t0 = time.perf_counter()
    m.fit(train + val)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = np.concatenate([m.predict_proba(n) for n in test]).astype(np.float32)
    t_inf = (time.perf_counter() - t0) / len(test)
    stem = state_dir / f"ref_{name}_fold{i:02d}"
    with atomic_path(stem.with_suffix(".npz")) as tmp:
        np.savez_compressed(tmp, p=p, y=np.concatenate([n.y for n in test]))
    write_json_atomic(stem.with_suffix(".json"), {
        "train_s": t_train, "infer_s_per_night": t_inf,
        "test_subjects": list(fold.test_subjects),
        "class_weight": str(getattr(m, "class_weight", None))})


def attach_references(rec: dict, state_dir: Path) -> dict:
    """Copy stored reference timings into ``rec`` (predictions are read on demand)."""
    rec = dict(rec, train_s=dict(rec["train_s"]),
               infer_s_per_night=dict(rec["infer_s_per_night"]))
    for name in ("lightgbm", "lightgbm-context"):
        f = state_dir / f"ref_{name}_fold{rec['index']:02d}.json"
        if f.is_file():
            r = json.loads(f.read_text())
            if r["test_subjects"] == rec["test_subjects"]:
                # files written before the field existed used the then-default "balanced"
                rec.setdefault("reference_class_weight", {})[name] = r.get("class_weight",
                                                                            "balanced")
                rec["train_s"][name] = r["train_s"]
                rec["infer_s_per_night"][name] = r["infer_s_per_night"]
    return rec


def fold_predictions(state_dir: Path, rec: dict, v1_dir: Path | None = None) -> list[dict]:
    """Per-night true labels and predicted codes of every variant of a stored fold (and
    the direct SSNet of the first complete run, ``v1_dir``, when it holds the same fold)."""
    z = dict(np.load(state_dir / f"fold{rec['index']:02d}.npz"))
    if v1_dir is not None and (v1_dir / f"fold{rec['index']:02d}.json").is_file():
        v1 = json.loads((v1_dir / f"fold{rec['index']:02d}.json").read_text())
        if v1["test_subjects"] == rec["test_subjects"] and v1["nights"] == rec["nights"]:
            z["p_ssnet_v1"] = np.load(v1_dir / f"fold{rec['index']:02d}.npz")["p_ssnet"]
    for name in ("lightgbm", "lightgbm-context"):
        if name in rec["infer_s_per_night"]:
            r = np.load(state_dir / f"ref_{name}_fold{rec['index']:02d}.npz")
            z[f"p_{name}"] = r["p"]
    cuts = np.cumsum([0] + rec["lengths"])
    out = []
    for k, nid in enumerate(rec["nights"]):
        s = slice(cuts[k], cuts[k + 1])
        y5 = z["y"][s]
        d = {"night": nid, "subject": rec["subjects"][k], "y5": y5, "y3": to_3class(y5)}
        for name in ("ssnet", "ssnet_v1", "lightgbm", "lightgbm-context"):
            if f"p_{name}" in z:
                p = z[f"p_{name}"][s]
                d[name] = p.argmax(1)
                d[f"{name}_as3"] = proba_to_3class(p).argmax(1)
        if "hier_p1" in z:
            p1, p2 = z["hier_p1"][s], z["hier_p2"][s]
            casc = np.where(p1.argmax(1) == 0, 0, 1 + p2.argmax(1))
            d["ssnet-hier"] = casc
            d["ssnet-hier_merged_argmax"] = merge_hierarchical(p1, p2).argmax(1)
        out.append(d)
    return out


# --------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------
def transition_mask(y3: np.ndarray) -> np.ndarray:
    """Epochs whose true 3-class stage differs from the previous or the next epoch."""
    t = np.zeros(len(y3), bool)
    change = (y3[1:] != y3[:-1]) & (y3[1:] >= 0) & (y3[:-1] >= 0)
    t[1:] |= change
    t[:-1] |= change
    return t


def masked_acc(y: np.ndarray, p: np.ndarray, m: np.ndarray) -> float:
    k = (y >= 0) & m
    return float((y[k] == p[k]).mean()) if k.any() else math.nan


def mean_sd(v) -> dict[str, float]:
    v = np.asarray([x for x in v if x is not None and np.isfinite(x)], float)
    return {"mean": float(v.mean()) if v.size else math.nan,
            "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan, "n": int(v.size)}


def feature_reference() -> dict | None:
    """Best 5-class feature models of ``real_features.json`` (overall and without
    temporal context), pooled and per-fold mean accuracy."""
    path = RESULTS / "real_features.json"
    if not path.is_file():
        return None
    try:
        cv = json.loads(path.read_text())["cv"]
    except (json.JSONDecodeError, KeyError):
        return None
    rows = {}
    for name, entry in cv.items():
        if "5class" not in entry:
            continue
        e5, e3 = entry["5class"], entry.get("3class", {})
        rows[name] = {"accuracy": e5["pooled"]["accuracy"], "macro_f1": e5["pooled"]["macro_f1"],
                      "kappa": e5["pooled"]["kappa"],
                      "fold_mean_accuracy": e5["per_fold"]["accuracy"]["mean"],
                      "n_folds": int(entry.get("n_folds", e5["per_fold"].get("n", 0))),
                      "fold_accuracy": [f["accuracy"] for f in e5.get("folds", [])],
                      "fold_accuracy_3class": [f["accuracy"] for f in e3.get("folds", [])],
                      "accuracy_3class": e3.get("pooled", {}).get("accuracy", math.nan)}
    if not rows:
        return None
    plain = {k: v for k, v in rows.items() if "context" not in k}
    best = max(rows, key=lambda k: rows[k]["accuracy"])
    out = {"path": str(path.relative_to(ROOT)), "models": rows, "best": best}
    if plain:
        out["best_non_context"] = max(plain, key=lambda k: plain[k]["accuracy"])
    return out


def _per_fold(nights_per_fold: list[list[dict]], keys: list[str]) -> dict[str, list[dict]]:
    """Accuracy, macro-F1 and kappa of every variant in every fold."""
    per_fold: dict[str, list[dict]] = {k: [] for k in keys}
    for f in nights_per_fold:
        y5 = np.concatenate([d["y5"] for d in f])
        y3 = to_3class(y5)
        for k in per_fold:
            r = evaluate(y5 if k in V5 else y3, np.concatenate([d[k] for d in f]),
                         n_classes=5 if k in V5 else 3)
            per_fold[k].append({m: r[m] for m in ("accuracy", "macro_f1", "kappa")})
    return per_fold


def _paired(per_fold: dict[str, list[dict]]) -> dict[str, dict]:
    """Paired per-fold accuracy differences: SSNet against each reference, and the
    hierarchical against the direct SSNet's 3-class view."""
    paired = {}
    for ref in ("ssnet_v1", "lightgbm", "lightgbm-context"):
        if ref in per_fold:
            d = [a["accuracy"] - b["accuracy"] for a, b in zip(per_fold["ssnet"],
                                                              per_fold[ref], strict=True)]
            paired[f"ssnet - {ref}"] = {**mean_sd(d), "folds_better": int(sum(x > 0 for x in d))}
    for a, b in (("ssnet-hier", "ssnet_as3"),):
        if a in per_fold and b in per_fold:
            d = [x["accuracy"] - y["accuracy"] for x, y in zip(per_fold[a], per_fold[b],
                                                               strict=True)]
            paired[f"{a} - {b} (3-class)"] = {**mean_sd(d),
                                              "folds_better": int(sum(x > 0 for x in d))}
    return paired


def _hierarchy(allp: list[dict], cat: dict, pooled: dict) -> dict[str, dict]:
    """Where the hierarchy helps: 3-class accuracy on transition and stable epochs, and
    the REM, wake and NREM scores of each 3-class variant."""
    trans = np.concatenate([transition_mask(d["y3"]) for d in allp])
    where = {}
    for k in ("ssnet_as3", "ssnet-hier", "ssnet-hier_merged_argmax", "lightgbm-context_as3"):
        if k not in cat:
            continue
        e = pooled[k]
        where[k] = {"accuracy_transition_epochs": masked_acc(cat["y3"], cat[k], trans),
                    "accuracy_stable_epochs": masked_acc(cat["y3"], cat[k], ~trans),
                    "n_transition_epochs": int(((cat["y3"] >= 0) & trans).sum()),
                    "rem_f1": e["per_class_f1"]["R"], "rem_recall": e["recall"]["R"],
                    "rem_precision": e["precision"]["R"], "wake_f1": e["per_class_f1"]["W"],
                    "nrem_f1": e["per_class_f1"]["NREM"]}
    return where


def _sleep_statistics(allp: list[dict]) -> tuple[dict[str, dict], list[dict]]:
    """Sleep statistics per night, predicted minus true on the reference's time in bed:
    the summary per variant and every night's row."""
    sleep: dict[str, dict] = {}
    night_rows = []
    for d in allp:
        row = {"night": d["night"], "subject": d["subject"]}
        for k, nc in (("ssnet", 5), ("ssnet-hier", 3), ("lightgbm-context", 5)):
            if k not in d:
                continue
            ref = Hypnogram(d["y5"] if nc == 5 else d["y3"], n_classes=nc)
            c = compare_hypnograms(Hypnogram(d[k], n_classes=nc), ref)
            row[k] = {s: c["sleep_statistics"][s] for s in STATS
                      if s in c["sleep_statistics"]}
        night_rows.append(row)
    for k in ("ssnet", "ssnet-hier", "lightgbm-context"):
        rows = [r[k] for r in night_rows if k in r]
        if not rows:
            continue
        sleep[k] = {}
        for s in STATS:
            diffs = [r[s]["diff"] for r in rows if s in r]
            trues = [r[s]["ref"] for r in rows if s in r]
            if not diffs or not np.isfinite(trues).any():
                continue
            sleep[k][s] = {"true_mean": mean_sd(trues)["mean"],
                           "mean_diff": mean_sd(diffs)["mean"],
                           "sd_diff": mean_sd(diffs)["sd"],
                           "mean_abs_diff": mean_sd(np.abs(diffs))["mean"],
                           "median_abs_diff": float(np.nanmedian(np.abs(diffs))),
                           "n_nights": mean_sd(diffs)["n"]}
    return sleep, night_rows


def _feature_paired(recs: list[dict], per_fold: dict[str, list[dict]]) -> dict | None:
    """:func:`feature_reference` with paired per-fold differences on the folds both
    benchmarks have finished."""
    ref = feature_reference()
    if ref:
        idx = [r["index"] for r in recs]
        ref["paired"] = {}
        for key in ("best", "best_non_context"):
            if key not in ref:
                continue
            m = ref["models"][ref[key]]
            for mine, theirs, tag in (("ssnet", m["fold_accuracy"], "5class"),
                                      ("ssnet-hier", m["fold_accuracy_3class"], "3class"),
                                      ("ssnet_as3", m["fold_accuracy_3class"], "3class")):
                pairs = [(per_fold[mine][j]["accuracy"], theirs[i])
                         for j, i in enumerate(idx) if i < len(theirs)]
                if pairs:
                    d = [a - b for a, b in pairs]
                    ref["paired"][f"{mine} - {ref[key]} ({tag})"] = {
                        **mean_sd(d), "folds_better": int(sum(x > 0 for x in d)),
                        "mean_ssnet": float(np.mean([a for a, _ in pairs])),
                        "mean_reference": float(np.mean([b for _, b in pairs]))}
    return ref


def _timing(recs: list[dict]) -> dict[str, dict]:
    """Mean training time per fold and per epoch, and inference time per night."""
    timing: dict[str, dict] = {"train_s_per_epoch": {}, "train_s_per_fold": {},
                               "inference_s_per_night": {}}
    for name in ("ssnet", "ssnet-hier", "lightgbm", "lightgbm-context"):
        if any(name in r["infer_s_per_night"] for r in recs):
            timing["train_s_per_fold"][name] = mean_sd(r["train_s"][name] for r in recs)["mean"]
            timing["inference_s_per_night"][name] = mean_sd(
                r["infer_s_per_night"][name] for r in recs)["mean"]
            if name.startswith("ssnet"):
                timing["train_s_per_epoch"][name] = mean_sd(
                    t for r in recs for t in r["epoch_s"][name])["mean"]
    return timing


def _machine(args) -> dict:
    """The machine, with torch's threads, device and GPU."""
    return {"node": platform.node(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": args.threads, "device": args.device,
            "gpu": (torch.cuda.get_device_name(0)
                    if args.device.startswith("cuda") else None),
            "cpus": os.cpu_count(),
            "note": "timings are indicative (a shared machine)"}


def summarise(args, config, recs, nights_per_fold, n_planned, n_nights, n_subjects,
              fold_source) -> dict:
    """The results of the finished folds (pooled, per fold, paired, where the hierarchy
    helps, sleep statistics, timing)."""
    allp = [d for f in nights_per_fold for d in f]
    cat = {k: np.concatenate([d[k] for d in allp]) for k in allp[0] if k not in
           ("night", "subject")}
    have5 = [k for k in V5 if k in cat]
    have3 = [k for k in V3 if k in cat]
    pooled = {k: evaluate(cat["y5"], cat[k], n_classes=5) for k in have5}
    pooled.update({k: evaluate(cat["y3"], cat[k], n_classes=3) for k in have3})
    per_fold = _per_fold(nights_per_fold, have5 + have3)
    summary = {k: {m: mean_sd(r[m] for r in v) for m in ("accuracy", "macro_f1", "kappa")}
               for k, v in per_fold.items()}
    sleep, night_rows = _sleep_statistics(allp)
    keep = ("accuracy", "macro_f1", "kappa", "per_class_f1", "recall", "precision",
            "confusion_matrix", "n_epochs")
    return {
        "benchmark": args.name,
        "status": "complete" if len(recs) == n_planned else
        f"partial ({len(recs)}/{n_planned} folds)",
        "command": command_line(
            "benchmarks.ssnet_real.run", [a for a in sys.argv[1:] if a != "--render-only"],
            "python" if args.device.startswith("cuda") else
            "nice -n 10 env OMP_NUM_THREADS=1 python"),
        "date": now_utc(),
        "machine": _machine(args),
        "data": {"path": "../shared/data/sleepedf_bandpower", "n_nights": n_nights,
                 "n_subjects": n_subjects,
                 "source": "PhysioNet Sleep-EDF Expanded (Kemp et al. 2000; Goldberger et "
                           "al. 2000), ODC-By"},
        "config": config, "fold_source": fold_source,
        "folds": [{"fold": r["fold"], "test_subjects": r["test_subjects"],
                   "val_subjects": r["val_subjects"], "best_epoch": r["best_epoch"],
                   "epochs_run": r["epochs_run"]} for r in recs],
        "summary_per_fold_mean_sd": summary, "per_fold": per_fold,
        "paired_accuracy_difference": _paired(per_fold),
        "pooled": {k: {m: v[m] for m in keep if m in v} for k, v in pooled.items()},
        "hierarchy_vs_direct_3class": _hierarchy(allp, cat, pooled),
        "sleep_statistics_pred_minus_true": sleep, "sleep_statistics_per_night": night_rows,
        "timing_cpu": _timing(recs), "feature_reference": _feature_paired(recs, per_fold),
        "reference_class_weight": {k: sorted({r.get("reference_class_weight", {}).get(k)
                                              for r in recs} - {None})
                                   for k in ("lightgbm", "lightgbm-context")},
    }


# --------------------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------------------
def _pm(d: dict, scale: float = 100, digits: int = 1) -> str:
    if d["n"] > 1:
        return f"{d['mean'] * scale:.{digits}f} ± {d['sd'] * scale:.{digits}f}"
    return f"{d['mean'] * scale:.{digits}f}"


def _md_intro(out: dict) -> list[str]:
    """Report lines: data, configuration, accuracy table and paired differences."""
    s, c, po = out["summary_per_fold_mean_sd"], out["config"], out["pooled"]
    lines = [
        "# SSNet (CNN/MLP + TCN + attention) on the real Sleep-EDF band-power set", "",
        f"Status: **{out['status']}** · {out['date']} · command `{out['command']}`", "",
        f"Data: {out['data']['n_subjects']} subjects / {out['data']['n_nights']} nights of "
        "real per-epoch band-power features (3 channels x 10 features), PhysioNet Sleep-EDF "
        "Expanded (Kemp et al. 2000; Goldberger et al. 2000; ODC-By). Subject-wise "
        f"10-fold CV, test folds from `{out['fold_source']}`; in each fold "
        f"{c['val_fraction']:.0%} of the training subjects are validation subjects "
        "(best epoch by validation accuracy, early stopping); the LightGBM references "
        "are trained on all training-fold subjects (train + validation), n_jobs=1, "
        "class weights "
        + ", ".join(f"{k}: {'/'.join(v)}" for k, v in out["reference_class_weight"].items()
                    if v) + ".", "",
        f"Folds finished: {len(out['folds'])}.", "",
        f"SSNet config: preset `{c['preset']}` (MLP front-end on the 30 features of each "
        f"epoch), seq_len {c['seq_len']}, `{c['mode']}` windows, at most {c['epochs']} "
        f"epochs, patience {c['patience']}, batch {c['batch_size']}, AdamW + cosine LR, "
        + {"night": "per-night z-score", "robust": "per-night robust z-score (median/IQR, "
           "clipped at ±8)"}.get(c.get("normalize", "night"), "no normalisation")
        + f", label smoothing {c.get('label_smoothing', 0.0):g}, inference averages the "
        "many-to-many windows (stride "
        f"{c.get('infer_stride') or c['seq_len'] // 2}) covering each epoch, torch "
        f"threads {out['machine']['torch_threads']}"
        + (", on " + out["machine"]["gpu"] if out["machine"].get("gpu") else "")
        + (". Lean budget for a shared 2-core CPU." if c["preset"] == "small" else ".")
        + (f" {c['selection']}" if c.get("selection") else ""), "",
        "## Accuracy (per-fold mean ± sd, %; pooled in brackets)", "",
        "| model | classes | accuracy | macro-F1 | kappa |", "|---|---|---|---|---|"]
    for k in V5 + V3:
        if k in s:
            nc = 5 if k in V5 else 3
            lines.append(f"| {LABEL[k]} | {nc} | {_pm(s[k]['accuracy'])} "
                         f"({po[k]['accuracy'] * 100:.1f}) | {_pm(s[k]['macro_f1'])} | "
                         f"{_pm(s[k]['kappa'])} |")
    if out["paired_accuracy_difference"]:
        lines += ["", "Paired per-fold accuracy differences (points):", ""]
        for k, d in out["paired_accuracy_difference"].items():
            lines.append(f"- {k}: {d['mean'] * 100:+.2f} ± {d['sd'] * 100:.2f} "
                         f"(better in {d['folds_better']}/{d['n']} folds)")
    return lines


def _md_feature_reference(out: dict) -> list[str]:
    """Report lines: the feature models of ``real_features.json`` on the same folds."""
    lines: list[str] = []
    ref = out.get("feature_reference")
    lines += ["", "## Feature models of `benchmarks/results/real_features.json` (same folds)",
              ""]
    if ref:
        lines += ["| model | folds done | 5-class acc. (pooled) | fold mean | macro-F1 | kappa "
                  "| 3-class acc. |", "|---|---|---|---|---|---|---|"]
        for k, v in sorted(ref["models"].items(), key=lambda kv: -kv[1]["accuracy"]):
            lines.append(f"| {k} | {v['n_folds']} | {v['accuracy'] * 100:.1f} | "
                         f"{v['fold_mean_accuracy'] * 100:.1f} | {v['macro_f1'] * 100:.1f} | "
                         f"{v['kappa'] * 100:.1f} | {v['accuracy_3class'] * 100:.1f} |")
        lines += ["", f"Best without temporal context: `{ref.get('best_non_context')}`; best "
                  f"overall: `{ref['best']}`. Paired per-fold accuracy differences on the "
                  "folds both runs finished (points; target for SSNet direct 5-class: >= +2 "
                  "over the best non-sequence model):", "",
                  "| comparison | folds | SSNet mean | reference mean | difference | SSNet "
                  "better in |", "|---|---|---|---|---|---|"]
        for k, d in ref.get("paired", {}).items():
            lines.append(f"| {k} | {d['n']} | {d['mean_ssnet'] * 100:.1f} | "
                         f"{d['mean_reference'] * 100:.1f} | {d['mean'] * 100:+.2f}"
                         + (f" ± {d['sd'] * 100:.2f}" if d["n"] > 1 else "")
                         + f" | {d['folds_better']}/{d['n']} |")
    else:
        lines.append("`real_features.json` was not available when this was rendered; the "
                     "LightGBM rows above are the same-fold reference (re-render with "
                     "`--render-only`).")
    return lines


def _md_details(out: dict) -> list[str]:
    """Report lines: per-class F1, where the hierarchy helps, sleep statistics, time."""
    po = out["pooled"]
    lines: list[str] = []
    cls5 = list(po["ssnet"]["per_class_f1"])
    lines += ["", "## Per-class F1 (pooled)", "", "| model | " + " | ".join(cls5) + " |",
              "|---|" + "---|" * len(cls5)]
    for k in V5:
        if k in po:
            lines.append(f"| {LABEL[k]} | " + " | ".join(
                f"{v:.3f}" for v in po[k]["per_class_f1"].values()) + " |")
    lines += ["", "| model (3-class) | W | NREM | R |", "|---|---|---|---|"]
    for k in V3:
        if k in po:
            lines.append(f"| {LABEL[k]} | " + " | ".join(
                f"{v:.3f}" for v in po[k]["per_class_f1"].values()) + " |")
    w = out["hierarchy_vs_direct_3class"]
    lines += ["", "## Where does the hierarchy help? (pooled, 3-class)", "",
              "Transition epochs: the true 3-class stage differs from the previous or the "
              f"next epoch ({next(iter(w.values()))['n_transition_epochs']} epochs).", "",
              "| model | acc. transition | acc. stable | REM F1 | REM recall | REM precision "
              "| W F1 |", "|---|---|---|---|---|---|---|"]
    for k, v in w.items():
        lines.append(f"| {LABEL[k]} | {v['accuracy_transition_epochs']:.3f} | "
                     f"{v['accuracy_stable_epochs']:.3f} | {v['rem_f1']:.3f} | "
                     f"{v['rem_recall']:.3f} | {v['rem_precision']:.3f} | "
                     f"{v['wake_f1']:.3f} |")
    ss = out["sleep_statistics_pred_minus_true"]
    cols = [k for k in ("ssnet", "ssnet-hier", "lightgbm-context") if k in ss]
    lines += ["", "## Sleep statistics per night: predicted minus true hypnogram", "",
              "Mean difference ± sd over nights (mean / median absolute difference); time in "
              "bed = first to last scored epoch of the expert hypnogram (the set keeps 30 min "
              "of wake before the first sleep epoch, so the true sleep-onset latency is 30 "
              "min; latencies jump when a short first sleep bout is missed, hence the "
              "medians). Minutes or %.", "",
              "| statistic | true mean | " + " | ".join(LABEL[k] for k in cols) + " |",
              "|---|---|" + "---|" * len(cols)]
    for stat in STATS:
        if stat not in ss.get("ssnet", {}):
            continue
        cells = []
        for k in cols:
            v = ss[k].get(stat)
            cells.append("–" if v is None else
                         f"{v['mean_diff']:+.1f} ± {v['sd_diff']:.1f} ({v['mean_abs_diff']:.1f} / "
                         f"{v['median_abs_diff']:.1f})")
        lines.append(f"| {stat} | {ss['ssnet'][stat]['true_mean']:.1f} | "
                     + " | ".join(cells) + " |")
    t = out["timing_cpu"]
    m = out["machine"]
    where = (f"{m['gpu']} ({m.get('device')})" if m.get("gpu") else
             f"this CPU ({m['torch_threads']} torch thread(s), shared machine)")
    lines += ["", f"## Time on {where}", ""]
    for k, v in t["train_s_per_epoch"].items():
        stage = " per stage (2 stages)" if k == "ssnet-hier" else ""
        lines.append(f"- {LABEL.get(k, k)}: {v:.1f} s per training epoch{stage}, "
                     f"{t['train_s_per_fold'][k]:.0f} s training per fold")
    for k, v in t["inference_s_per_night"].items():
        lines.append(f"- inference {k}: {v * 1000:.0f} ms per night")
    lines += ["", f"Machine: {out['machine']['platform']} ({out['machine']['processor']}), "
              f"python {out['machine']['python']}, torch {out['machine']['torch']}.", ""]
    return lines


def render_md(out: dict) -> str:
    """The Markdown report of :func:`summarise`'s results."""
    return "\n".join(_md_intro(out) + _md_feature_reference(out) + _md_details(out))


# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(BANDPOWER_DIR))
    ap.add_argument("--folds-file", default=str(FOLDS_FILE))
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    ap.add_argument("--only-folds", type=int, nargs="+", default=None,
                    help="train only these fold indices (0-based; folds finished by another "
                         "process are still rendered), to share the folds between workers")
    ap.add_argument("--epochs", type=int, default=CHOSEN["epochs"])
    ap.add_argument("--patience", type=int, default=CHOSEN["patience"])
    ap.add_argument("--seq-len", type=int, default=CHOSEN["seq_len"])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--mode", default="many-to-many")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--normalize", default=CHOSEN["normalize"],
                    choices=["night", "robust", "none"])
    ap.add_argument("--label-smoothing", type=float, default=CHOSEN["label_smoothing"])
    ap.add_argument("--infer-stride", type=int, default=CHOSEN["infer_stride"],
                    help="stride of the averaged many-to-many windows at inference "
                         "(default seq_len // 2)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device of the SSNet models "
                    "(default cpu; e.g. cuda)")
    ap.add_argument("--val", type=float, default=0.1, help="validation-subject fraction")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", nargs="*", default=["lightgbm"],
                    choices=["lightgbm", "lightgbm-context"],
                    help="same-fold feature-model references to compute (stored apart; "
                         "ones computed earlier are always shown)")
    ap.add_argument("--state-dir", default=None,
                    help="per-fold results and checkpoints (default .cache/<name>)")
    ap.add_argument("--v1-state-dir", default=str(ROOT / ".cache" / "ssnet_real_v1"),
                    help="stored folds of the first complete run (seq_len 16), shown as "
                         "the 'SSNet v1' row when present")
    ap.add_argument("--render-only", action="store_true",
                    help="only re-render the tables from the stored folds")
    ap.add_argument("--name", default="ssnet_real")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    state_dir = Path(args.state_dir or ROOT / ".cache" / args.name)
    state_dir.mkdir(parents=True, exist_ok=True)

    nights = load_bandpower(args.data)
    folds, fold_source = load_folds(nights, Path(args.folds_file), args.val, args.seed)
    if args.max_folds:
        folds = folds[:args.max_folds]
    config = {"preset": args.preset, "seq_len": args.seq_len, "mode": args.mode,
              "epochs": args.epochs, "patience": args.patience,
              "batch_size": args.batch_size, "seed": args.seed, "val_fraction": args.val,
              "monitor": "val_acc", "optimizer": "adamw",
              "schedule": "cosine", "normalize": args.normalize,
              "label_smoothing": args.label_smoothing, "infer_stride": args.infer_stride}
    tag = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    if all(config[k] == v for k, v in CHOSEN.items()):
        config["selection"] = SELECTION_NOTE
    v1_dir = Path(args.v1_state_dir) if args.v1_state_dir else None
    recs, per_fold_nights = [], []
    for i, fold in enumerate(progress(folds, desc="folds", unit="fold")):
        path = state_dir / f"fold{i:02d}.json"
        rec = json.loads(path.read_text()) if path.is_file() else None
        if rec is not None and (rec.get("config_tag") != tag
                                or rec["test_subjects"] != list(fold.test_subjects)):
            rec = None
        if rec is None:
            if args.render_only or (args.only_folds is not None
                                    and i not in args.only_folds):
                continue
            rec = run_fold(i, fold, nights, args, state_dir, tag)
        for name in args.reference or []:
            if args.render_only or (args.only_folds is not None
                                    and i not in args.only_folds):
                break
            f = state_dir / f"ref_{name}_fold{i:02d}.json"
            if not (f.is_file() and json.loads(f.read_text())["test_subjects"]
                    == list(fold.test_subjects)):
                run_reference(i, fold, nights, name, args.seed, state_dir)
        rec = attach_references(rec, state_dir)
        recs.append(rec)
        per_fold_nights.append(fold_predictions(state_dir, rec, v1_dir))
        fn = per_fold_nights[-1]
        acc = {}
        for k in ("ssnet", "lightgbm-context", "ssnet_as3", "ssnet-hier"):
            if k in fn[0]:
                y = np.concatenate([d["y5" if k in V5 else "y3"] for d in fn])
                acc[k] = masked_acc(y, np.concatenate([d[k] for d in fn]), y >= 0)
        print(f"{fold.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()),
              file=sys.stderr, flush=True)
        out = summarise(args, config, recs, per_fold_nights, len(folds), len(nights),
                        len({n.subject_id for n in nights}), fold_source)
        RESULTS.mkdir(parents=True, exist_ok=True)
        # an unfinished run never replaces a complete table: it goes to <name>_partial
        stem = args.name if len(recs) == len(folds) else f"{args.name}_partial"
        write_json_atomic(RESULTS / f"{stem}.json", out)
        write_text_atomic(RESULTS / f"{stem}.md", render_md(out))
        if stem == args.name:
            for suffix in (".json", ".md"):
                (RESULTS / f"{args.name}_partial{suffix}").unlink(missing_ok=True)
    if not recs:
        print("no finished fold to render", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
