"""SSNet on the real Sleep-EDF band-power set: subject-wise 10-fold cross-validation.

Direct 5-class SSNet (its 3-class view too) and the hierarchical 3-class SSNet
(Wake vs Sleep, then REM vs NREM) on per-epoch band-power sequences of 59 subjects /
115 nights, next to the best feature model of ``benchmarks/results/real_features.json``
on the same folds when that file exists. Checkpoints are chosen on validation subjects
carved out of each training fold (never the test fold). Also reports where the hierarchy
helps (REM, transition epochs), sleep statistics of the predicted vs true hypnograms,
training time per epoch and inference time per night on this CPU.

Run (from the repository root)::

    nice -n 10 python benchmarks/ssnet_real/run.py            # full 10-fold CV
    python benchmarks/ssnet_real/run.py --folds 10 --max-folds 1 --epochs 2   # quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hypnoscope.datasets import load_feature_dir
from hypnoscope.evaluation import evaluate
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.models import make_model
from hypnoscope.sleepstats import sleep_statistics
from hypnoscope.splits import subject_kfold
from hypnoscope.stages import proba_to_3class, to_3class
from hypnoscope.utils import progress, write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sleepedf_bandpower"
RESULTS = ROOT / "benchmarks" / "results"
STATS = ("total_sleep_min", "sleep_efficiency_pct", "sleep_onset_latency_min",
         "rem_latency_min", "waso_min", "rem_min")


def transition_mask(y3: np.ndarray) -> np.ndarray:
    """Epochs whose (3-class) true stage differs from the previous or next epoch."""
    t = np.zeros(len(y3), bool)
    change = (y3[1:] != y3[:-1]) & (y3[1:] >= 0) & (y3[:-1] >= 0)
    t[1:] |= change
    t[:-1] |= change
    return t


def acc(y: np.ndarray, p: np.ndarray, m: np.ndarray | None = None) -> float:
    k = y >= 0 if m is None else (y >= 0) & m
    return float((y[k] == p[k]).mean()) if k.any() else math.nan


def mean_sd(v) -> dict[str, float]:
    v = np.asarray([x for x in v if x is not None and np.isfinite(x)], float)
    return {"mean": float(v.mean()) if v.size else math.nan,
            "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan, "n": int(v.size)}


def stats_diff(true_codes: np.ndarray, pred_codes: np.ndarray, n_classes: int) -> dict:
    ts = sleep_statistics(Hypnogram(true_codes, n_classes=n_classes))
    ps = sleep_statistics(Hypnogram(pred_codes, n_classes=n_classes))
    return {k: {"true": ts[k], "pred": ps[k], "diff": ps[k] - ts[k]} for k in STATS}


def load_feature_reference(folds) -> dict | None:
    """Best feature model per fold from real_features.json, if its folds match ours."""
    path = RESULTS / "real_features.json"
    if not path.is_file():
        return None
    try:
        ref = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return {"path": str(path.relative_to(ROOT)), "raw": ref}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=16)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--mode", default="many-to-many")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--val", type=float, default=0.1, help="validation-subject fraction")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="ssnet_real")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    nights = load_feature_dir(args.data)
    folds = subject_kfold(nights, k=args.folds, seed=args.seed, val=args.val)
    if args.max_folds:
        folds = folds[:args.max_folds]
    common = dict(preset=args.preset, seq_len=args.seq_len, epochs=args.epochs,
                  mode=args.mode, batch_size=args.batch_size, seed=args.seed, num_threads=args.threads, device="cpu")
    config = {**common, "folds": args.folds, "val_fraction": args.val,
              "fold_function": f"hypnoscope.splits.subject_kfold(k={args.folds}, "
                               f"seed={args.seed}, val={args.val})"}
    keys = ("direct5", "direct5_as3", "hier3", "hier3_merged_argmax")
    per_fold: list[dict] = []
    pooled: dict[str, list] = {k: [] for k in ("y5", "y3", "trans", *keys)}
    night_stats: list[dict] = []
    timing = {"train_s_per_epoch": {"ssnet": [], "ssnet-hier": []},
              "inference_s_per_night": {"ssnet": [], "ssnet-hier": []}}
    for fold in progress(folds, desc="folds", unit="fold"):
        train, val, test = fold.select(nights)
        direct = make_model("ssnet", n_classes=5, **common).fit(train, val)
        hier = make_model("ssnet-hier", n_classes=3, **common).fit(train, val)
        for name, m in (("ssnet", direct), ("ssnet-hier", hier)):
            timing["train_s_per_epoch"][name] += [
                t["seconds_per_epoch"] for t in m.training_summary.values()]
        fold_pred: dict[str, list] = {k: [] for k in ("y5", "y3", *keys)}
        for night in test:
            t0 = time.perf_counter()
            p5 = direct.predict_proba(night)
            timing["inference_s_per_night"]["ssnet"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ph = hier.stage_probabilities(night)
            h3 = hier.predict(night)
            timing["inference_s_per_night"]["ssnet-hier"].append(time.perf_counter() - t0)
            from hypnoscope.models.ssnet import merge_hierarchical

            preds = {"direct5": p5.argmax(1), "direct5_as3": proba_to_3class(p5).argmax(1),
                     "hier3": h3,
                     "hier3_merged_argmax": merge_hierarchical(ph["wake_sleep"],
                                                               ph["rem_nrem"]).argmax(1)}
            y5, y3 = night.y, to_3class(night.y)
            for k, v in preds.items():
                fold_pred[k].append(v)
            fold_pred["y5"].append(y5)
            fold_pred["y3"].append(y3)
            pooled["trans"].append(transition_mask(y3))
            night_stats.append({"night": night.night_id, "subject": night.subject_id,
                                "direct5": stats_diff(y5, preds["direct5"], 5),
                                "hier3": stats_diff(y3, preds["hier3"], 3),
                                "direct5_as3": stats_diff(y3, preds["direct5_as3"], 3)})
        cat = {k: np.concatenate(v) for k, v in fold_pred.items()}
        for k, v in cat.items():
            pooled[k].append(v)
        row = {"fold": fold.name, "test_subjects": list(fold.test_subjects),
               "val_subjects": list(fold.val_subjects),
               "best_epoch": {"ssnet": direct.training_summary["direct"]["best_epoch"],
                              **{f"ssnet-hier:{t}": s["best_epoch"]
                                 for t, s in hier.training_summary.items()}}}
        for k in keys:
            nc = 5 if k == "direct5" else 3
            r = evaluate(cat["y5" if nc == 5 else "y3"], cat[k], n_classes=nc)
            row[k] = {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "kappa": r["kappa"],
                      "per_class_f1": r["per_class_f1"]}
        per_fold.append(row)
        print(f"{fold.name}: 5-class acc {row['direct5']['accuracy']:.4f}, 3-class direct "
              f"{row['direct5_as3']['accuracy']:.4f}, hier {row['hier3']['accuracy']:.4f}",
              file=sys.stderr, flush=True)
        write_results(args, config, per_fold, pooled, night_stats, timing, len(folds), nights,
                      folds)
    return 0


def write_results(args, config, per_fold, pooled, night_stats, timing, n_folds_planned,
                  nights, folds) -> None:
    keys = ("direct5", "direct5_as3", "hier3", "hier3_merged_argmax")
    cat = {k: np.concatenate(v) for k, v in pooled.items() if v}
    summary = {k: {m: mean_sd(r[k][m] for r in per_fold)
                   for m in ("accuracy", "macro_f1", "kappa")} for k in keys}
    pooled_eval = {k: evaluate(cat["y5"] if k == "direct5" else cat["y3"], cat[k],
                               n_classes=5 if k == "direct5" else 3) for k in keys}
    trans = cat["trans"]
    where = {}
    for k in ("direct5_as3", "hier3", "hier3_merged_argmax"):
        y3, p = cat["y3"], cat[k]
        e = pooled_eval[k]
        where[k] = {"accuracy_transition_epochs": acc(y3, p, trans),
                    "accuracy_stable_epochs": acc(y3, p, ~trans),
                    "n_transition_epochs": int(((y3 >= 0) & trans).sum()),
                    "rem_f1": e["per_class_f1"]["R"], "rem_recall": e["recall"]["R"],
                    "rem_precision": e["precision"]["R"], "wake_f1": e["per_class_f1"]["W"],
                    "nrem_f1": e["per_class_f1"]["NREM"]}
    sleep = {}
    for k in ("direct5", "direct5_as3", "hier3"):
        sleep[k] = {s: {"mean_diff": mean_sd(n[k][s]["diff"] for n in night_stats)["mean"],
                        "mean_abs_diff": mean_sd(abs(n[k][s]["diff"])
                                                 for n in night_stats)["mean"],
                        "true_mean": mean_sd(n[k][s]["true"] for n in night_stats)["mean"]}
                    for s in STATS}
    ref = load_feature_reference(folds)
    t = {k: {n: mean_sd(v)["mean"] for n, v in d.items()} for k, d in timing.items()}
    out = {
        "benchmark": args.name, "status": "complete" if len(per_fold) == n_folds_planned
        else f"partial ({len(per_fold)}/{n_folds_planned} folds)",
        "command": "nice -n 10 python benchmarks/ssnet_real/run.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads()},
        "data": {"path": "../shared/data/sleepedf_bandpower", "n_nights": len(nights),
                 "n_subjects": len({n.subject_id for n in nights}),
                 "source": "PhysioNet Sleep-EDF Expanded (Kemp et al. 2000; Goldberger et al. "
                           "2000), ODC-By"},
        "config": config, "folds": [f.to_dict() for f in folds],
        "summary_per_fold_mean_sd": summary,
        "pooled": {k: {m: pooled_eval[k][m] for m in ("accuracy", "macro_f1", "kappa",
                                                         "per_class_f1", "confusion_matrix",
                                                         "n_epochs")} for k in keys},
        "hierarchy_vs_direct_3class": where, "sleep_statistics_pred_minus_true": sleep,
        "timing_cpu": t, "per_fold": per_fold,
        "feature_reference": None if ref is None else ref["path"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / f"{args.name}.json", out)
    write_text_atomic(RESULTS / f"{args.name}.md", render_md(out))


def _f(d: dict, scale: float = 100, digits: int = 1) -> str:
    if d["n"] > 1:
        return f"{d['mean'] * scale:.{digits}f} ± {d['sd'] * scale:.{digits}f}"
    return f"{d['mean'] * scale:.{digits}f}"


def render_md(out: dict) -> str:
    s = out["summary_per_fold_mean_sd"]
    c = out["config"]
    lines = [
        "# SSNet on the real Sleep-EDF band-power set (subject-wise CV)", "",
        f"Status: **{out['status']}** · date {out['date']} · command "
        f"`{out['command']}`", "",
        f"Data: {out['data']['n_subjects']} subjects / {out['data']['n_nights']} nights of "
        "real per-epoch band-power features (3 channels x 10 features) from PhysioNet "
        "Sleep-EDF Expanded (Kemp et al. 2000; Goldberger et al. 2000; ODC-By).", "",
        f"Config: preset `{c['preset']}`, seq_len {c['seq_len']}, mode `{c['mode']}`, max "
        f"{c['epochs']} epochs (best epoch on validation subjects = {c['val_fraction']:.0%} "
        f"of each training fold's subjects), folds `{c['fold_function']}`, "
        f"torch threads {out['machine']['torch_threads']}.", "",
        "## Accuracy (mean ± sd over folds, %)", "",
        "| model | classes | accuracy | macro-F1 | kappa |", "|---|---|---|---|---|"]
    names = {"direct5": ("SSNet direct", "5"), "direct5_as3": ("SSNet direct, 3-class view", "3"),
             "hier3": ("SSNet hierarchical (cascade)", "3"),
             "hier3_merged_argmax": ("SSNet hierarchical (arg-max of merged p)", "3")}
    for k, (n, nc) in names.items():
        lines.append(f"| {n} | {nc} | {_f(s[k]['accuracy'])} | {_f(s[k]['macro_f1'])} | "
                     f"{_f(s[k]['kappa'])} |")
    lines += ["", "Per-class F1 (pooled over test folds):", "",
              "| model | " + " | ".join(out["pooled"]["direct5"]["per_class_f1"]) + " |",
              "|---|" + "---|" * 5]
    lines.append("| SSNet direct 5-class | " + " | ".join(
        f"{v:.3f}" for v in out["pooled"]["direct5"]["per_class_f1"].values()) + " |")
    lines += ["", "| model (3-class) | W | NREM | R |", "|---|---|---|---|"]
    for k in ("direct5_as3", "hier3", "hier3_merged_argmax"):
        lines.append(f"| {names[k][0]} | " + " | ".join(
            f"{v:.3f}" for v in out["pooled"][k]["per_class_f1"].values()) + " |")
    lines += ["", "## Where does the hierarchy help? (pooled, 3-class)", "",
              "Transition epochs: true 3-class stage differs from the previous or next epoch.",
              "", "| model | acc. transition | acc. stable | REM F1 | REM recall | "
              "REM precision |", "|---|---|---|---|---|---|"]
    for k, w in out["hierarchy_vs_direct_3class"].items():
        lines.append(f"| {names[k][0]} | {w['accuracy_transition_epochs']:.3f} | "
                     f"{w['accuracy_stable_epochs']:.3f} | {w['rem_f1']:.3f} | "
                     f"{w['rem_recall']:.3f} | {w['rem_precision']:.3f} |")
    n_tr = next(iter(out["hierarchy_vs_direct_3class"].values()))["n_transition_epochs"]
    lines += ["", f"({n_tr} transition epochs.)", "",
              "## Sleep statistics: predicted minus true hypnogram, per night", "",
              "| statistic | true mean | direct 5-class: mean diff / mean abs | "
              "hierarchical 3-class: mean diff / mean abs |", "|---|---|---|---|"]
    ss = out["sleep_statistics_pred_minus_true"]
    for stat in STATS:
        a, b = ss["direct5"][stat], ss["hier3"][stat]
        lines.append(f"| {stat} | {a['true_mean']:.1f} | {a['mean_diff']:+.1f} / "
                     f"{a['mean_abs_diff']:.1f} | {b['mean_diff']:+.1f} / "
                     f"{b['mean_abs_diff']:.1f} |")
    t = out["timing_cpu"]
    lines += ["", "## Time on this CPU", "",
              f"- training: {t['train_s_per_epoch']['ssnet']:.1f} s per training epoch "
              f"(direct), {t['train_s_per_epoch']['ssnet-hier']:.1f} s per epoch per stage "
              "(hierarchical, 2 stages)",
              f"- inference: {t['inference_s_per_night']['ssnet'] * 1000:.0f} ms per night "
              f"(direct), {t['inference_s_per_night']['ssnet-hier'] * 1000:.0f} ms "
              "(hierarchical)", "",
              f"Machine: {out['machine']['platform']}, torch {out['machine']['torch']}.", "",
              "## Feature-model reference on the same folds", "",
              (f"See `{out['feature_reference']}` (best non-sequence model)."
               if out["feature_reference"] else
               "`benchmarks/results/real_features.json` was not available when this ran; "
               "the folds above come from the same `subject_kfold(k=10, seed=0)`."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
