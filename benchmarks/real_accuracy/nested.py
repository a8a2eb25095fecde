"""Nested subject-wise CV of candidate stagers on the real Sleep-EDF band powers.

Outer loop: the subject-wise 10-fold CV of ``benchmarks/real_features``
(:func:`hypnoscope.evaluation.splits.subject_kfold`, k=10, seed 0; checked against
``benchmarks/results/real_folds.json``); the outer test subjects are used for the
estimate only. Inner loop, on each outer fold's training subjects:
:func:`hypnoscope.evaluation.nested.cross_fit` (2 subject-wise inner folds) gives every candidate
member's out-of-fold (OOF) probabilities of the training nights and, as a bag of the two
inner models, its probabilities of the outer test nights;
:func:`hypnoscope.evaluation.nested.choose_combination` chooses a procedure's soft-voting weights,
class re-weighting and HMM smoothing on the OOF predictions alone, and the choice is
scored on the outer test nights.

Candidate members (fixed before any result was seen): today's default
``lightgbm-context`` (robust per-night normalisation, sqrt class weights), the same with
per-night quantile normalisation, the same trained also on band-power-jittered copies
(per-channel gain and spectral tilt), SSNet (the settings of ``benchmarks/ssnet_real``)
and a Transformer over the per-epoch feature sequence (``seq-transformer``, small
preset). Procedures: each member alone (no choice), and combinations chosen in the inner
folds among the three LightGBM variants ("first vote", shippable without PyTorch) or
among these and the sequence models ("all vote"). Added later (:data:`LATER`):
``lgbm-sleepnorm``, robust per-night normalisation whose statistics come from the sleep
period only (context option ``span="sleep"``); ``ssnet-ls`` and ``seq-transformer-ls``,
the two sequence models trained with label smoothing 0.1; ``ssnet-paper-ls``, SSNet's
paper-size network (12 epochs on a CPU, label smoothing); and the three LightGBM variants
each also given the night's median and IQR of every feature (context option
``night_stats``: ``lgbm-nightstats`` etc.), alone and voted. The procedure
"torch-free vote + class/HMM" is whatever ``lightgbm-vote`` ships
(:data:`hypnoscope.models.vote.DEFAULT_MEMBERS`): exactly its training.

Resumable: each (member, outer fold) result is cached in ``--state-dir``; run members or
folds in separate processes (``--members``, ``--folds``), then ``--report`` (the
default when everything is cached) writes ``benchmarks/results/real_accuracy_nested.*``.

Usage (from the repository root)::

    nice -n 5 .venv/bin/python -m benchmarks.real_accuracy.nested
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
    ROOT,
    load_bandpower,
    result_header,
    write_results,
)
from benchmarks.real_features import run as rf
from hypnoscope.evaluation.metrics import evaluate, robustness
from hypnoscope.evaluation.nested import Combination, choose_combination, cross_fit
from hypnoscope.evaluation.probability import transition_matrix
from hypnoscope.evaluation.splits import subject_kfold
from hypnoscope.models import make_model
from hypnoscope.models.vote import DEFAULT_MEMBERS as VOTE_MEMBERS
from hypnoscope.stages import stage_names
from hypnoscope.utils.files import atomic_path
from hypnoscope.utils.runtime import progress

DEFAULT_STATE = ROOT / "benchmarks" / "real_accuracy" / ".cache" / "nested"
STATE_VERSION = 1
K_INNER = 2
DEEP = {"num_threads": 1}
#: name -> (registry model, options, needs PyTorch, what it tests)
MEMBERS: dict[str, tuple[str, dict, bool, str]] = {
    "lgbm": ("lightgbm-context", {"n_jobs": 1}, False,
             "today's default: lightgbm-context, robust per-night normalisation"),
    "lgbm-quantile": ("lightgbm-context", {"n_jobs": 1, "context": {"normalize": "quantile"}},
                      False, "per-night quantile (rank -> normal score) normalisation"),
    "lgbm-augment": ("lightgbm-context", {"n_jobs": 1, "augment": True}, False,
                     "also trained on copies with per-channel gain and spectral tilt"),
    "lgbm-sleepnorm": ("lightgbm-context", {"n_jobs": 1, "context": {"span": "sleep"}},
                       False, "robust per-night normalisation over the sleep period only "
                       "(training: the scored sleep period; test: the model's own "
                       "predicted one, label-free)"),
    "lgbm-nightstats": ("lightgbm-context", {"n_jobs": 1, "context": {"night_stats": True}},
                        False, "robust per-night normalisation plus the night's median "
                        "and IQR of every feature (context option night_stats)"),
    "lgbm-quantile-nightstats": (
        "lightgbm-context", {"n_jobs": 1, "context": {"normalize": "quantile",
                                                      "night_stats": True}},
        False, "quantile per-night normalisation plus the night's median and IQR"),
    "lgbm-augment-nightstats": (
        "lightgbm-context", {"n_jobs": 1, "augment": True, "context": {"night_stats": True}},
        False, "band-power-jittered copies plus the night's median and IQR"),
    "ssnet": ("ssnet", {**DEEP, "seq_len": 32, "epochs": 6, "patience": 2, "batch_size": 64},
              True, "SSNet (MLP + TCN + attention), settings of benchmarks/ssnet_real"),
    "seq-transformer": ("seq-transformer", dict(DEEP), True,
                        "Transformer encoder over the per-epoch feature sequence"),
    "ssnet-ls": ("ssnet", {**DEEP, "seq_len": 32, "epochs": 6, "patience": 2,
                           "batch_size": 64, "label_smoothing": 0.1}, True,
                 "SSNet trained with label smoothing 0.1"),
    "seq-transformer-ls": ("seq-transformer", {**DEEP, "label_smoothing": 0.1}, True,
                           "seq-transformer trained with label smoothing 0.1"),
    "ssnet-paper-ls": ("ssnet", {**DEEP, "preset": "paper", "seq_len": 32, "epochs": 12,
                                 "patience": 3, "batch_size": 64, "label_smoothing": 0.1},
                       True, "SSNet, paper-size network (12 epochs on CPU), label "
                       "smoothing 0.1"),
}
#: the LightGBM variants measured first (the members of the first shipped vote)
FIRST_VOTE = ["lgbm", "lgbm-quantile", "lgbm-augment"]
TORCH_FREE = [*FIRST_VOTE, "lgbm-sleepnorm"]
#: the same three variants, each also given the night's statistics (context option
#: ``night_stats``)
NIGHTSTATS_VOTE = ["lgbm-nightstats", "lgbm-quantile-nightstats", "lgbm-augment-nightstats"]
#: the members of the registered model ``lightgbm-vote`` (shipped as ``vote``)
SHIPPED_VOTE = [name for name, _, _ in VOTE_MEMBERS]
#: candidates measured after the first vote was chosen
LATER = ["lgbm-sleepnorm", "ssnet-ls", "seq-transformer-ls", "ssnet-paper-ls",
         *NIGHTSTATS_VOTE]
FIRST_ALL = [m for m in MEMBERS if m not in LATER]
#: name -> (members that may get weight, tune class weighting and smoothing, description)
PROCEDURES: dict[str, tuple[list[str], bool, str]] = {
    **{f"{m} alone": ([m], False, MEMBERS[m][3]) for m in MEMBERS},
    "lgbm + class/HMM": (["lgbm"], True, "default member, class re-weighting and HMM "
                         "chosen in the inner folds"),
    "first vote": (FIRST_VOTE, False, "soft vote of the three LightGBM variants measured "
                   "first, weights chosen in the inner folds"),
    "first vote + class/HMM": (FIRST_VOTE, True, "the same, plus class re-weighting "
                               "and HMM chosen in the inner folds"),
    "all vote": (FIRST_ALL, False, "soft vote of the first vote's members and the two "
                 "sequence models"),
    "all vote + class/HMM": (FIRST_ALL, True, "the same, plus class re-weighting "
                             "and HMM"),
    "first vote with lgbm-sleepnorm": (TORCH_FREE, False, "soft vote of the first vote's "
                                       "members and lgbm-sleepnorm"),
    "first vote with lgbm-sleepnorm + class/HMM": (TORCH_FREE, True, "the same, plus "
                                                   "class re-weighting and HMM"),
    "all vote, label-smoothed sequence models": (
        FIRST_VOTE + ["ssnet-ls", "seq-transformer-ls"], False,
        "all vote with the two sequence models trained with label smoothing"),
    "all vote, paper-size SSNet": (
        FIRST_VOTE + ["ssnet-paper-ls", "seq-transformer"], False,
        "all vote with the paper-size SSNet (label smoothing) in place of the small one"),
    "night-statistics vote": (
        NIGHTSTATS_VOTE, False, "soft vote of the three LightGBM variants, each also "
        "given the night's median and IQR of every feature"),
    "night-statistics vote + class/HMM": (
        NIGHTSTATS_VOTE, True, "the same, plus class re-weighting and HMM"),
    "all vote, night statistics": (
        NIGHTSTATS_VOTE + ["ssnet", "seq-transformer"], False,
        "the night-statistics LightGBM variants with the two sequence models"),
    "torch-free vote + class/HMM": (
        SHIPPED_VOTE, True, "the members of lightgbm-vote, weights, class re-weighting "
        "and HMM chosen in the inner folds: the training of the shipped vote"),
}
#: the procedure that is the training of the registered model ``lightgbm-vote``
SHIPPABLE = "torch-free vote + class/HMM"
TARGETS = {"accuracy": 0.835, "macro_f1": 0.78, "kappa": 0.77, "f1_N3": 0.78,
           "f1_R": 0.88, "worst_fold_accuracy": 0.79}


def state_path(state: Path, member: str, fold, data: str) -> Path:
    model, opts, _, _ = MEMBERS[member]
    blob = json.dumps({"v": STATE_VERSION, "model": model, "opts": opts, "k": K_INNER,
                       "test": list(fold.test_subjects), "train": list(fold.train_subjects),
                       "data": data}, sort_keys=True, default=str)
    h = hashlib.sha1(blob.encode()).hexdigest()[:12]
    return state / f"{member}_{fold.name.replace(' ', '_').replace('/', 'of')}_{h}.npz"


def _save(path: Path, rec: dict) -> dict:
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **rec)
    return rec


def run_member(member: str, fold, nights, seed: int, path: Path) -> dict:
    """OOF probabilities of the fold's training nights and bagged test probabilities."""
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    model, opts, _, _ = MEMBERS[member]
    train, _, test = fold.select(nights)
    t0 = time.perf_counter()
    oof, bag, _ = cross_fit(lambda: make_model(model, seed=seed, **opts), train, test,
                            k=K_INNER, seed=seed)
    rec = {"train_ids": np.array([n.night_id for n in train]),
           "test_ids": np.array([n.night_id for n in test]),
           "oof": np.concatenate(oof).astype(np.float32),
           "test": np.concatenate(bag).astype(np.float32),
           "seconds": np.array(time.perf_counter() - t0)}
    return _save(path, rec)


def split_nights(flat: np.ndarray, nights) -> list[np.ndarray]:
    bounds = np.cumsum([0, *[n.n_epochs for n in nights]])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def fold_outcome(fold, nights, recs: dict[str, dict]) -> dict:
    """Every procedure's choice on the inner OOF predictions and its outer predictions."""
    train, _, test = fold.select(nights)
    names = list(MEMBERS)
    oof = [split_nights(recs[m]["oof"], train) for m in names]
    outer = [split_nights(recs[m]["test"], test) for m in names]
    y_in = [n.y for n in train]
    tm = transition_matrix(train, 5)
    out = {}
    for proc, (allowed, tune, _) in PROCEDURES.items():
        idx = [names.index(m) for m in allowed]
        combo = choose_combination(
            oof, y_in, tm, prior_exponents=(0.0, 0.25, 0.5, 0.75) if tune else (0.0,),
            smoothings=(None, "hmm") if tune else (None,), members=idx)
        avg = [combo.average([o[j] for o in outer]) for j in range(len(test))]
        pred = {n.night_id: q.argmax(1) for n, q in zip(test, combo.adjust_many(avg),
                                                        strict=True)}
        out[proc] = {"combination": combo, "pred": pred}
    return out


def summarise(preds: dict[str, np.ndarray], nights_by_id, fold_of) -> dict:
    yt = {k: nights_by_id[k].y for k in preds}
    r = robustness(yt, preds, {k: nights_by_id[k].subject_id for k in preds},
                   {k: int(k.rsplit("__", 1)[-1]) for k in preds},
                   {k: fold_of[k] for k in preds})
    t = np.concatenate([yt[k] for k in preds])
    p = np.concatenate([preds[k] for k in preds])
    ev = evaluate(t, p, n_classes=5)
    f1 = {c: float(ev["per_class"][c]["f1"]) for c in stage_names(5)}
    return {"pooled": r["pooled"], "f1": f1, "fold_distribution": r["fold_distribution"],
            "worst_folds": r["worst_folds"], "subject_distribution": r["subject_distribution"],
            "by_night_number": r["by_night_number"],
            "per_fold": r["per_fold"]}


def f3(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.3f}"


def markdown(res: dict) -> str:
    L = ["# Nested subject-wise CV of candidate stagers (real Sleep-EDF band powers)", "",
         f"Command: `{res['command']}`  ", f"Date: {res['date']}  ",
         f"Machine: {res['machine']}  ",
         f"Outer folds done: {res['n_outer_folds_done']} of 10", "",
         res["protocol"], "",
         "## Every procedure on the outer test subjects (pooled over the 10 outer folds)", "",
         "| procedure | members | accuracy | macro-F1 | kappa | F1 W | F1 N1 | F1 N2 | F1 N3 "
         "| F1 R | fold acc mean ± sd | worst fold | subject acc worst decile |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for proc, s in res["procedures"].items():
        fd, sd = s["fold_distribution"]["accuracy"], s["subject_distribution"]["accuracy"]
        L.append(f"| {proc} | {', '.join(PROCEDURES[proc][0])} | {f3(s['pooled']['accuracy'])}"
                 f" | {f3(s['pooled']['macro_f1'])} | {f3(s['pooled']['kappa'])} | "
                 + " | ".join(f3(s["f1"][c]) for c in stage_names(5))
                 + f" | {f3(fd['mean'])} ± {f3(fd['sd'])} | {f3(fd['min'])} | "
                   f"{f3(sd['worst_decile_mean'])} |")
    L += ["", "## What each choice added (paired per outer fold, accuracy points)", ""]
    L += [f"- {k}: {v}" for k, v in res["paired"].items()]
    L += ["", "## Choices made in the inner folds", "",
          "| procedure | outer fold | weights (" + ", ".join(MEMBERS) + ") | class exponent "
          "| smoothing |", "|---|---|---|---|---|"]
    for proc, rows in res["choices"].items():
        if len(PROCEDURES[proc][0]) == 1 and not PROCEDURES[proc][1]:
            continue
        for r in rows:
            L.append(f"| {proc} | {r['fold']} | {', '.join(f'{w:.1f}' for w in r['weights'])}"
                     f" | {r['prior_exponent']} | {r['smoothing'] or '-'} |")
    tgt = res["targets"]
    L += ["", f"## Targets (procedure `{res['shippable_procedure']}`)", "",
          "| metric | target | value | met |", "|---|---|---|---|"]
    for k, v in tgt.items():
        L.append(f"| {k} | >= {v['target']} | {f3(v['value'])} | "
                 f"{'yes' if v['met'] else 'no'} |")
    L += ["", "Member training time per outer fold (two inner models; CPU, shared 2-core "
          "machine): " + ", ".join(f"{m} {s:.0f} s" for m, s in res["seconds"].items()), ""]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(BANDPOWER_DIR))
    ap.add_argument("--members", nargs="*", default=list(MEMBERS), choices=list(MEMBERS))
    ap.add_argument("--folds", nargs="*", type=int, default=None,
                    help="outer folds to compute (1-based; default all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--state-dir", default=str(DEFAULT_STATE))
    ap.add_argument("--name", default="real_accuracy_nested", help="results file stem")
    ap.add_argument("--no-report", action="store_true",
                    help="only compute (for parallel workers)")
    args = ap.parse_args(argv)

    nights = load_bandpower(args.data)
    folds = subject_kfold(nights, k=10, seed=args.seed)
    rf.check_folds(nights, folds, args.seed, 10)
    state = Path(args.state_dir)
    todo = [f for i, f in enumerate(folds) if args.folds is None or i + 1 in args.folds]
    jobs = [(m, f) for f in todo for m in args.members]
    for m, f in progress(jobs, desc="member x outer fold", unit="fit"):
        rec = run_member(m, f, nights, args.seed, state_path(state, m, f, args.data))
        print(f"{m} {f.name}: {float(rec['seconds']):.0f} s", flush=True)
    if args.no_report:
        return 0
    done = [f for f in folds
            if all(state_path(state, m, f, args.data).is_file() for m in MEMBERS)]
    if not done:
        print("not reporting: no outer fold has every member's results yet", file=sys.stderr)
        return 1
    by_id = {n.night_id: n for n in nights}
    preds: dict[str, dict] = {}
    choices: dict[str, list] = {}
    fold_of: dict[str, str] = {}
    seconds = {m: 0.0 for m in MEMBERS}
    for f in progress(done, desc="choosing", unit="fold"):
        recs = {m: run_member(m, f, nights, args.seed, state_path(state, m, f, args.data))
                for m in MEMBERS}
        for m in MEMBERS:
            seconds[m] += float(recs[m]["seconds"]) / len(done)
        for proc, o in fold_outcome(f, nights, recs).items():
            preds.setdefault(proc, {}).update(o["pred"])
            c: Combination = o["combination"]
            choices.setdefault(proc, []).append({"fold": f.name, **c.to_dict()})
        fold_of.update({by_id[k].night_id: f.name for k in o["pred"]})
    procs = {p: summarise(preds[p], by_id, fold_of) for p in preds}
    ship_name = SHIPPABLE

    def fold_acc(p):
        return np.array([r["accuracy"] for r in procs[p]["per_fold"]])

    paired = {}
    pairs = [("lgbm-quantile alone", "lgbm alone"), ("lgbm-augment alone", "lgbm alone"),
             ("ssnet alone", "lgbm alone"), ("seq-transformer alone", "lgbm alone"),
             ("lgbm + class/HMM", "lgbm alone"), ("first vote", "lgbm alone"),
             ("first vote + class/HMM", "first vote"),
             ("all vote", "first vote"), ("all vote + class/HMM", "all vote"),
             ("all vote + class/HMM", "lgbm alone"),
             ("lgbm-sleepnorm alone", "lgbm alone"),
             ("first vote with lgbm-sleepnorm", "first vote"),
             ("first vote with lgbm-sleepnorm + class/HMM", "first vote + class/HMM"),
             ("ssnet-ls alone", "ssnet alone"),
             ("seq-transformer-ls alone", "seq-transformer alone"),
             ("all vote, label-smoothed sequence models", "all vote"),
             ("ssnet-paper-ls alone", "ssnet-ls alone"),
             ("ssnet-paper-ls alone", "lgbm alone"),
             ("all vote, paper-size SSNet", "all vote"),
             ("lgbm-nightstats alone", "lgbm alone"),
             ("lgbm-quantile-nightstats alone", "lgbm-quantile alone"),
             ("lgbm-augment-nightstats alone", "lgbm-augment alone"),
             ("night-statistics vote", "first vote"),
             ("night-statistics vote + class/HMM", "first vote + class/HMM"),
             ("night-statistics vote", "lgbm-nightstats alone"),
             ("all vote, night statistics", "all vote"),
             ("torch-free vote + class/HMM", "lgbm alone")]
    for a, b in pairs:
        if a not in procs or b not in procs:
            continue
        d = 100 * (fold_acc(a) - fold_acc(b))
        paired[f"{a} - {b}"] = (f"{d.mean():+.2f} ± {d.std(ddof=1):.2f} "
                                f"(better in {(d > 0).sum()}/{len(d)} folds)")
    ship = procs[ship_name]
    values = {"accuracy": ship["pooled"]["accuracy"], "macro_f1": ship["pooled"]["macro_f1"],
              "kappa": ship["pooled"]["kappa"], "f1_N3": ship["f1"]["N3"],
              "f1_R": ship["f1"]["R"],
              "worst_fold_accuracy": ship["fold_distribution"]["accuracy"]["min"]}
    res = {
        **result_header("real_accuracy_nested", "benchmarks.real_accuracy.nested", argv),
        "protocol": (
            "Real data: 59 subjects / 115 nights of Sleep-EDF Expanded cassette band powers "
            "(Kemp et al. 2000; Goldberger et al. 2000; ODC-By). Outer loop: subject-wise "
            "10-fold CV (subject_kfold(k=10, seed=0), the folds of benchmarks/real_features)"
            "; the outer test subjects are used only for the numbers below. Inner loop, "
            f"on each outer fold's training subjects: {K_INNER} subject-wise inner folds; "
            "each member is trained on one and predicts the other (out-of-fold), and the "
            "outer test nights are predicted by the average of the two inner models (a "
            "bag of models trained on half of the training subjects each; compare the "
            "single model on all of them in benchmarks/results/real_features.md). Every "
            "choice "
            "(soft-voting weights on a 0.1 simplex grid by log-loss; class re-weighting "
            "exponent in {0, 0.25, 0.5, 0.75} and HMM smoothing on/off by kappa) is made "
            "on the out-of-fold predictions of the training subjects only. The procedure "
            f"'{SHIPPABLE}' is exactly the training of the registered model lightgbm-vote "
            "(hypnoscope.models.vote.CrossFitVote: the same members, inner folds, choices "
            "and bag of inner models)."),
        "config": {"members": {m: {"model": v[0], "options": v[1], "needs_torch": v[2],
                                   "tests": v[3]} for m, v in MEMBERS.items()},
                   "procedures": {p: {"members": v[0], "tune_class_and_smoothing": v[1],
                                      "description": v[2]} for p, v in PROCEDURES.items()},
                   "k_inner": K_INNER, "seed": args.seed},
        "procedures": procs, "paired": paired, "choices": choices,
        "seconds": seconds,
        "shippable_procedure": ship_name,
        "n_outer_folds_done": len(done),
        "targets": {k: {"target": TARGETS[k], "value": values[k],
                        "met": bool(values[k] >= TARGETS[k])} for k in TARGETS},
    }
    write_results(args.name, res, markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
