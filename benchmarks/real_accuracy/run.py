"""Robustness of the default stager across people, on the real Sleep-EDF band powers.

Trains the shipped ``default`` model's configuration (architecture, options and smoothing
from its model card ``src/hypnoscope/data/models/default.json``, as built by
``scripts/train_default_model.py``) on

(a) the subject-wise 10-fold CV folds of ``benchmarks/real_features``
    (:func:`hypnoscope.evaluation.splits.subject_kfold`, k=10, seed 0; checked against
    ``benchmarks/results/real_folds.json``), and
(b) :func:`hypnoscope.evaluation.splits.dissimilar_subject_split`: the ~20 % of subjects least like
    the rest by their per-night band-power statistics are held out (no validation set:
    feature models do not use one),

and reports, with :func:`hypnoscope.evaluation.metrics.robustness`, per-fold spread and worst
folds, the per-subject accuracy distribution (worst decile), night 1 vs night 2, and the
held-out atypical subjects against the CV average (and against those same subjects' CV
scores).

Resumable: every split's test labels and probabilities are kept in ``--state-dir``
(:func:`hypnoscope.evaluation.cross_validation.cross_validate`, keyed by the model
configuration, split and data), and the results are re-rendered after each one.

Usage (from the repository root)::

    nice -n 10 .venv/bin/python -m benchmarks.real_accuracy.run
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from benchmarks.common import (
    BANDPOWER_DIR,
    ROOT,
    SHIPPED_MODELS,
    command_line,
    load_bandpower,
    machine_line,
    now_utc,
    write_results,
)
from benchmarks.real_features import run as rf
from hypnoscope.evaluation.cross_validation import FoldRecord, cross_validate
from hypnoscope.evaluation.metrics import robustness
from hypnoscope.evaluation.splits import (
    dissimilar_subject_split,
    subject_atypicality,
    subject_kfold,
)
from hypnoscope.models import make_model
from hypnoscope.utils.runtime import parse_options

CARD = SHIPPED_MODELS / "default.json"
DEFAULT_STATE = ROOT / "benchmarks" / "real_accuracy" / ".cache"
STATE_VERSION = 1


def default_model_options(seed: int, n_jobs: int) -> tuple[str, dict]:
    """Name and options of the shipped default model, read from its model card."""
    card = json.loads(CARD.read_text())
    opts: dict = {"seed": seed, "n_jobs": n_jobs}
    opts.update(card.get("options") or {})
    if card.get("smoothing"):
        opts["smoothing"] = card["smoothing"]
    return card["architecture"], opts


def night_number(night_id: str) -> int:
    """Recording night of a Sleep-EDF night id such as ``"07__2"``."""
    tail = str(night_id).rsplit("__", 1)[-1]
    if not tail.isdigit():
        raise ValueError(f"cannot read a night number from night id {night_id!r} "
                         "(expected e.g. '07__2')")
    return int(tail)


def split_record(rec: FoldRecord, nights) -> dict:
    """A split's stored result as :func:`by_night` reads it: test night ids and lengths,
    true codes, predicted codes (arg-max of the probabilities) and the fit time."""
    return {"night_ids": np.array([nights[i].night_id for i in rec.fold.test]),
            "lengths": rec.lengths, "y": rec.y.astype(np.int16),
            "pred": rec.proba.argmax(1).astype(np.int16), "train_s": np.array(rec.train_s)}


def by_night(recs: dict[str, dict]) -> tuple[dict, dict, dict]:
    """Per-night true and predicted codes and fold name from the stored split results."""
    yt, yp, fold_of = {}, {}, {}
    for fold_name, rec in recs.items():
        bounds = np.cumsum(np.r_[0, rec["lengths"]])
        for nid, a, b in zip(rec["night_ids"], bounds[:-1], bounds[1:], strict=True):
            yt[str(nid)], yp[str(nid)] = rec["y"][a:b], rec["pred"][a:b]
            fold_of[str(nid)] = fold_name
    return yt, yp, fold_of


def summarise(recs: dict[str, dict], subject_of: dict, with_folds: bool) -> dict | None:
    if not recs:
        return None
    yt, yp, fold_of = by_night(recs)
    return robustness(yt, yp, {k: subject_of[k] for k in yt},
                      {k: night_number(k) for k in yt},
                      fold_of if with_folds else None)


def f3(x) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.3f}"


def markdown(res: dict) -> str:
    cfg = res["config"]
    lines = ["# Robustness across people: the default stager on real Sleep-EDF band powers",
             "", f"Date: {res['date']} · machine: {res['machine']} · command: "
             f"`{res['command']}`", "",
             f"Model: `{cfg['model']}` with options `{json.dumps(cfg['options'])}` (the "
             f"shipped default's configuration, from its model card). Data: "
             f"{res['data']['n_subjects']} subjects, {res['data']['n_nights']} nights "
             "(real Sleep-EDF cassette band powers). 5 classes; unscored epochs excluded.",
             ""]
    cv = res.get("cv")
    if cv:
        fd, sd = cv["fold_distribution"]["accuracy"], cv["subject_distribution"]
        lines += [f"## (a) Subject-wise 10-fold CV ({cv['n_folds_done']} of "
                  f"{cfg['n_folds']} folds)", "",
                  "| | n | mean | sd | min | 10th pct | worst-decile mean | median | max |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
                  "| accuracy per fold | " + " | ".join(
                      str(fd[k]) if k == "n" else f3(fd[k]) for k in
                      ("n", "mean", "sd", "min", "p10", "worst_decile_mean", "median",
                       "max")) + " |"]
        for m in ("accuracy", "kappa", "macro_f1"):
            d = sd[m]
            lines.append(f"| {m} per subject | " + " | ".join(
                str(d[k]) if k == "n" else f3(d[k]) for k in
                ("n", "mean", "sd", "min", "p10", "worst_decile_mean", "median", "max"))
                + " |")
        p = cv["pooled"]
        lines += ["", f"Pooled: accuracy {f3(p['accuracy'])}, macro-F1 {f3(p['macro_f1'])},"
                  f" kappa {f3(p['kappa'])}. Worst folds (accuracy): " + ", ".join(
                      f"{r['fold']} {f3(r['accuracy'])}" for r in sorted(
                          cv["per_fold"], key=lambda r: r["accuracy"])[:3])
                  + ". Worst subjects (accuracy): " + ", ".join(
                      f"{r['subject']} {f3(r['accuracy'])}"
                      for r in cv["per_subject"][:len(cv["worst_subjects"])]) + ".", "",
                  "| recording night | nights | subjects | accuracy | macro-F1 | kappa |",
                  "|---|---:|---:|---:|---:|---:|"]
        for num, r in cv["by_night_number"].items():
            lines.append(f"| night {num} | {r['n_nights']} | {r['n_subjects']} | "
                         f"{f3(r['accuracy'])} | {f3(r['macro_f1'])} | {f3(r['kappa'])} |")
    ds = res.get("dissimilar")
    if ds:
        sp = res["dissimilar_split"]
        lines += ["", "## (b) Held-out atypical subjects (dissimilar_subject_split)", "",
                  f"Test subjects ({len(sp['test_subjects'])}, most atypical first): "
                  + ", ".join(sp["test_subjects_by_score"]) + f"; trained on the other "
                  f"{len(sp['train_subjects'])}.", "",
                  "| | accuracy | macro-F1 | kappa | subject accuracy: mean | min | "
                  "worst-decile mean |", "|---|---:|---:|---:|---:|---:|---:|"]
        rows = [("atypical subjects, held out together", ds)]
        if res.get("cv_on_dissimilar_subjects"):
            rows.append(("same subjects in the 10-fold CV", res["cv_on_dissimilar_subjects"]))
        if cv:
            rows.append(("all subjects, 10-fold CV", cv))
        for label, r in rows:
            p, d = r["pooled"], r["subject_distribution"]["accuracy"]
            lines.append(f"| {label} | {f3(p['accuracy'])} | {f3(p['macro_f1'])} | "
                         f"{f3(p['kappa'])} | {f3(d['mean'])} | {f3(d['min'])} | "
                         f"{f3(d['worst_decile_mean'])} |")
        c = res.get("atypicality_vs_cv_accuracy")
        if c:
            lines += ["", f"Atypicality score vs per-subject CV accuracy over "
                      f"{c['n_subjects']} subjects: Spearman rho {c['spearman_rho']:+.2f} "
                      f"(p = {c['p_value']:.2g})."]
        lines += ["", "| held-out night | nights | subjects | accuracy | macro-F1 | kappa |",
                  "|---|---:|---:|---:|---:|---:|"]
        for num, r in ds["by_night_number"].items():
            lines.append(f"| night {num} | {r['n_nights']} | {r['n_subjects']} | "
                         f"{f3(r['accuracy'])} | {f3(r['macro_f1'])} | {f3(r['kappa'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(BANDPOWER_DIR))
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    ap.add_argument("--test", type=float, default=0.2,
                    help="fraction of subjects in the atypical held-out set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2, help="LightGBM threads")
    ap.add_argument("--state-dir", default=str(DEFAULT_STATE))
    ap.add_argument("--name", default="real_accuracy", help="results file stem")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                    help="a model option on top of the card's, e.g. "
                         "'context={\"night_stats\": true}' (a candidate, not the default)")
    args = ap.parse_args(argv)

    nights = load_bandpower(args.data)
    subject_of = {n.night_id: n.subject_id for n in nights}
    folds = subject_kfold(nights, k=args.folds, seed=args.seed)
    rf.check_folds(nights, folds, args.seed, args.folds)
    dis = dissimilar_subject_split(nights, test=args.test, val=0.0, seed=args.seed)
    scores = subject_atypicality(nights)
    name, opts = default_model_options(args.seed, args.n_jobs)
    try:
        opts.update(parse_options(args.option))
    except ValueError as err:
        ap.error(f"--{err}")
    cfg_key = {k: v for k, v in opts.items() if k != "n_jobs"}
    cache_key = json.dumps({"v": STATE_VERSION, "model": name, "opts": cfg_key,
                            "data": args.data}, sort_keys=True)

    def run(folds_to_run, on_fold=None) -> list[FoldRecord]:
        """Train on each split's training nights and predict its test nights (cached)."""
        return cross_validate(nights, lambda _fold: make_model(name, **opts), folds=folds_to_run,
                              cache_dir=args.state_dir, cache_key=cache_key,
                              on_fold=on_fold, desc="folds").records

    res: dict = {
        "benchmark": "real_accuracy",
        "date": now_utc(),
        "machine": machine_line(),
        "command": command_line("benchmarks.real_accuracy.run", argv, "nice -n 10 python"),
        "config": {"model": name, "options": opts, "model_card": str(CARD.relative_to(ROOT)),
                   "n_folds": args.folds, "max_folds": args.max_folds, "seed": args.seed,
                   "fold_function": f"subject_kfold(k={args.folds}, seed={args.seed})",
                   "dissimilar_split": f"dissimilar_subject_split(test={args.test}, val=0, "
                                       f"seed={args.seed}) on the 30 band-power features"},
        "data": {"path": "../shared/data/sleepedf_bandpower",
                 "n_subjects": len(set(subject_of.values())), "n_nights": len(nights)},
        "dissimilar_split": {**dis.to_dict(),
                             "test_subjects_by_score": sorted(
                                 dis.test_subjects, key=lambda s: -scores[s]),
                             "atypicality": scores},
    }
    cv_recs: dict[str, dict] = {}
    times: dict[str, float] = {}

    def render() -> None:
        cv = summarise(cv_recs, subject_of, with_folds=True)
        if cv:
            res["cv"] = {**cv, "n_folds_done": len(cv_recs)}
            mine = [r for r in cv["per_subject"] if r["subject"] in set(dis.test_subjects)]
            if mine:
                yt, yp, _ = by_night(cv_recs)
                keep = [k for k in yt if subject_of[k] in set(dis.test_subjects)]
                res["cv_on_dissimilar_subjects"] = robustness(
                    {k: yt[k] for k in keep}, {k: yp[k] for k in keep},
                    {k: subject_of[k] for k in keep}, {k: night_number(k) for k in keep})
        if cv and len(cv["per_subject"]) > 2:
            from scipy.stats import spearmanr

            rows = cv["per_subject"]
            rho = spearmanr([scores[r["subject"]] for r in rows], [r["accuracy"] for r in rows])
            res["atypicality_vs_cv_accuracy"] = {
                "spearman_rho": float(rho.statistic), "p_value": float(rho.pvalue),
                "n_subjects": len(rows)}
        res["train_time_s"] = times
        write_results(args.name, res, markdown(res))

    rec = split_record(run([dis])[0], nights)
    times[dis.name] = float(rec["train_s"])
    res["dissimilar"] = summarise({dis.name: rec}, subject_of, with_folds=False)
    print(f"{dis.name}: acc {res['dissimilar']['pooled']['accuracy']:.3f} "
          f"(train {float(rec['train_s']):.0f} s)", flush=True)
    render()

    def fold_done(record: FoldRecord) -> None:
        rec = split_record(record, nights)
        cv_recs[record.fold.name] = rec
        times[record.fold.name] = float(rec["train_s"])
        acc = summarise({record.fold.name: rec}, subject_of, False)["pooled"]["accuracy"]
        print(f"{record.fold.name}: acc {acc:.3f} (train {float(rec['train_s']):.0f} s)",
              flush=True)
        render()

    run(folds[: args.max_folds] if args.max_folds else folds, fold_done)
    render()
    print(markdown(res))
    return 0 if not math.isnan(res["dissimilar"]["pooled"]["accuracy"]) else 1


if __name__ == "__main__":
    sys.exit(main())
