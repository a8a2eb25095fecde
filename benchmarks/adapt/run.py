"""Adapting the default stager to a new lab, on the real Sleep-EDF band powers.

A group of subjects plays a new lab (``--lab oldest``: the 12 oldest subjects by the
ages of PhysioNet's SC-subjects table, as MNE ships it in
``mne/datasets/sleep_physionet/age_records.csv``; ``--lab atypical``: the 12 least
typical by :func:`hypnoscope.evaluation.splits.subject_atypicality`). The shipped
default's training recipe (architecture and options of its model card) is trained on the
*other* subjects only. The lab's subjects are split (seeded) into validation subjects and
evaluation subjects. Within each part, for k = 1, 2, 4 and several seeded draws, k of
the part's nights are the reviewed nights the model is adapted on
(:func:`hypnoscope.models.adapt.adapt_model`), and the nights of the part's *other*
subjects are scored (the adapted nights' subjects are never scored;
:func:`hypnoscope.models.adapt.evaluate_adapted` refuses the adapted nights). Every
candidate method is scored before/after; the method is chosen by the mean kappa gain on
the validation subjects only, and the evaluation subjects give the reported numbers.

Only whole nights are scored, which the length-gated default stages with its night
member, so the methods adapt that member (``members=["night"]``); ``hypnoscope adapt``
adapts both.

Usage (from the repository root; the results file lists the commands that made it)::

    nice -n 10 .venv/bin/python -m benchmarks.adapt.run
    nice -n 10 .venv/bin/python -m benchmarks.adapt.run --candidates "refit x10" --draws 1
    nice -n 10 .venv/bin/python -m benchmarks.adapt.run --lab atypical
"""

from __future__ import annotations

import argparse
import csv
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
    SHIPPED_MODELS,
    load_bandpower,
    result_header,
    write_results,
)
from hypnoscope.evaluation.splits import subject_atypicality
from hypnoscope.models import make_model
from hypnoscope.models.adapt import adapt_model, evaluate_adapted

CARD = SHIPPED_MODELS / "default.json"
CACHE = ROOT / "benchmarks" / "adapt" / ".cache"
KS = (1, 2, 4)
#: Candidate methods: label -> (method, options).
CANDIDATES: dict[str, tuple[str, dict]] = {
    "boost 20 slow": ("boost", {"rounds": 20, "learning_rate": 0.02}),
    "boost 50": ("boost", {"rounds": 50}),
    "boost 200": ("boost", {"rounds": 200}),
    "refit x10": ("refit", {"weight": 10}),
    "recalibrate l2=1": ("recalibrate", {"l2": 1.0}),
    "recalibrate l2=1000": ("recalibrate", {"l2": 1000.0}),
}
LAB_SIZE = 12


def subject_ages() -> dict[str, int]:
    """Age of every sleep-cassette subject (two-digit id as in the band-power set), from
    PhysioNet's SC-subjects table as MNE ships it."""
    import mne.datasets.sleep_physionet as sp

    path = Path(sp.__file__).parent / "age_records.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return {f"{int(r['subject']):02d}": int(r["age"]) for r in csv.DictReader(fh)}


def lab_subjects(nights, lab: str) -> tuple[list[str], dict]:
    """The lab's subjects and what chose them."""
    subjects = sorted({n.subject_id for n in nights})
    if lab == "oldest":
        ages = subject_ages()
        order = sorted(subjects, key=lambda s: (-ages[s], s))
        return sorted(order[:LAB_SIZE]), {s: ages[s] for s in order[:LAB_SIZE]}
    scores = subject_atypicality(nights)
    order = sorted(subjects, key=lambda s: (-scores[s], s))
    return sorted(order[:LAB_SIZE]), {s: round(scores[s], 3) for s in order[:LAB_SIZE]}


def base_model(nights, train_subjects, seed: int, n_jobs: int):
    """The default's recipe trained on ``train_subjects`` (cached by subjects and card)."""
    import joblib

    card = json.loads(CARD.read_text())
    opts = {"seed": seed, "n_jobs": n_jobs, **(card.get("options") or {})}
    key = hashlib.sha1(json.dumps([sorted(train_subjects), card["architecture"],
                                   card.get("options"), seed]).encode()).hexdigest()[:12]
    path = CACHE / f"base-{key}.joblib"
    if path.is_file():
        return joblib.load(path), card, 0.0
    t = time.perf_counter()
    model = make_model(card["architecture"], **opts)
    model.fit([n for n in nights if n.subject_id in set(train_subjects)])
    took = time.perf_counter() - t
    CACHE.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return model, card, took


def draws_for(part_nights, k: int, n_draws: int, seed: int, tag: int):
    """Seeded draws of k adaptation nights; scored = nights of the part's other subjects."""
    out = []
    for d in range(n_draws):
        rng = np.random.default_rng([seed, tag, k, d])
        pick = sorted(rng.choice(len(part_nights), size=k, replace=False).tolist())
        adapt = [part_nights[i] for i in pick]
        used = {n.subject_id for n in adapt}
        scored = [n for n in part_nights if n.subject_id not in used]
        out.append((adapt, scored))
    return out


def run_part(name: str, part_nights, base, args, cached: dict, save) -> dict:
    """Every candidate on every draw of one part (validation or evaluation subjects);
    each (draw, candidate) result is kept in ``cached`` as soon as it is measured."""
    for k in KS:
        for d, (adapt, scored) in enumerate(draws_for(part_nights, k, args.draws, args.seed,
                                                       1 if name == "validation" else 2)):
            if not scored:
                continue
            key = f"{name}|k={k}|draw={d}"
            if key not in cached:
                before = evaluate_adapted(base, scored)
                cached[key] = {"adapt_nights": [n.night_id for n in adapt],
                               "scored_nights": [n.night_id for n in scored],
                               "before": {"accuracy": before["accuracy"],
                                          "kappa": before["kappa"]},
                               "after": {}, "seconds": {}}
            row = cached[key]
            for label in args.candidates:
                if label in row["after"]:
                    continue
                method, opts = CANDIDATES[label]
                t = time.perf_counter()
                model = adapt_model(base, adapt, method, base_name="default (lab excluded)",
                                    base_nights=args.train_nights, options=opts,
                                    members=None if method == "recalibrate" else ["night"],
                                    seed=args.seed, n_jobs=args.n_jobs)
                m = evaluate_adapted(model, scored)
                row["after"][label] = {"accuracy": m["accuracy"], "kappa": m["kappa"]}
                row["seconds"][label] = round(time.perf_counter() - t, 1)
                save()
                print(f"{key} {label}: kappa {row['before']['kappa']:.3f} -> "
                      f"{m['kappa']:.3f} ({row['seconds'][label]} s)", flush=True)
    return {key: row for key, row in cached.items() if key.startswith(f"{name}|")}


def summarise(rows: dict) -> dict:
    """Mean ± sd over draws per k: before and each candidate (over the draws it was
    measured on, its gain paired with the same draws' before), accuracy and kappa."""
    def stats(values: list[float]) -> dict:
        return {"mean": float(np.mean(values)),
                "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None}

    table: dict = {}
    for k in KS:
        rs = [r for key, r in sorted(rows.items()) if f"|k={k}|" in key]
        if not rs:
            continue
        entry: dict = {"n_draws": len(rs),
                       "n_scored_nights": [len(r["scored_nights"]) for r in rs],
                       "before": {m: stats([r["before"][m] for r in rs])
                                  for m in ("accuracy", "kappa")}}
        for label in CANDIDATES:
            got = [r for r in rs if label in r["after"]]
            if not got:
                continue
            entry[label] = {m: stats([r["after"][label][m] for r in got])
                            for m in ("accuracy", "kappa")}
            entry[label]["n_draws"] = len(got)
            entry[label]["kappa_gain"] = stats([r["after"][label]["kappa"]
                                                - r["before"]["kappa"] for r in got])
            entry[label]["seconds"] = stats([r["seconds"][label] for r in got])
        table[f"k={k}"] = entry
    return table


def choose(table: dict, without_training_nights: bool = False) -> str:
    """The candidate with the largest kappa gain averaged over k (validation subjects),
    among those measured at every k (``without_training_nights``: and usable by a lab
    that has only its own nights, i.e. not ``refit``)."""
    labels = [lb for lb in CANDIDATES if all(lb in t for t in table.values())
              and not (without_training_nights and CANDIDATES[lb][0] == "refit")]
    return max(labels, key=lambda lb: np.mean([t[lb]["kappa_gain"]["mean"]
                                               for t in table.values()]))


def pm(d: dict, sign: str = "") -> str:
    """``mean ± sd`` (one draw: the mean alone)."""
    return (f"{d['mean']:{sign}.3f}" if d["sd"] is None
            else f"{d['mean']:{sign}.3f} ± {d['sd']:.3f}")


def markdown(res: dict) -> str:
    lines = ["# Adapting the default stager to a new lab (real Sleep-EDF band powers)", "",
             f"Date: {res['date']} · machine: {res['machine']} · command: "
             f"`{res['command']}`", "",
             "Real data (Sleep-EDF cassette band powers). The default's recipe (its model "
             "card's architecture and options) is trained on the subjects outside the lab; "
             "the lab's subjects are split into validation subjects (method choice) and "
             "evaluation subjects (the table). For each k, k nights of the part are the "
             "adaptation nights (seeded draws); the nights of the part's other subjects are "
             "scored (pooled epochs per draw; mean ± sd over draws). Only whole nights are "
             "scored, so the night member is adapted. A candidate measured on fewer draws "
             "(`refit`, for its cost) has its gain paired with the same draws' before. Ages: "
             "PhysioNet's SC-subjects table as MNE ships it (age_records.csv).", ""]
    for lab, r in res["labs"].items():
        cfg = r["config"]
        lines += [f"## Lab: {lab} ({len(r['lab_subjects'])} subjects)", "",
                  "Commands (the results of each are kept): " + "; ".join(
                      f"`{c}`" for c in r.get("commands", [])), "",
                  f"Lab subjects ({cfg['lab_rule']}): " + ", ".join(
                      f"{s} ({v})" for s, v in r["lab_criterion"].items()) + ".",
                  f"Validation subjects: {', '.join(r['validation_subjects'])}; evaluation "
                  f"subjects: {', '.join(r['evaluation_subjects'])}. Base trained on "
                  f"{r['base']['n_subjects']} subjects / {r['base']['n_nights']} nights.", ""]
        if r.get("chosen"):
            gain = float(np.mean([t[r["chosen"]]["kappa_gain"]["mean"]
                                  for t in r["validation"].values()]))
            lines += [f"**Chosen on the validation subjects: `{r['chosen']}`** (largest mean "
                      f"kappa gain over k = 1, 2, 4: {gain:+.3f})."
                      + (" No candidate improved kappa on the validation subjects: on this "
                         "lab the base model is best left as it is, and the chosen candidate "
                         "is the one that changes it least." if gain <= 0 else ""), ""]
            alt = r.get("chosen_without_training_nights")
            if alt and alt != r["chosen"]:
                lines += [f"Among the candidates a lab can run with its own nights only (not "
                          f"`refit`, which needs the model's training nights): `{alt}`, "
                          "the default of `hypnoscope adapt`.", ""]
        for part in ("evaluation", "validation"):
            tab = r.get(part)
            if not tab:
                continue
            lines += [f"### {part.capitalize()} subjects", "",
                      "| k | draws | method | accuracy | kappa | kappa gain | s (adapt + score) |",
                      "|---:|---:|---|---:|---:|---:|---:|"]
            for kk, t in tab.items():
                lines.append(f"| {kk[2:]} | {t['n_draws']} | before (base) | "
                             f"{pm(t['before']['accuracy'])} | {pm(t['before']['kappa'])} "
                             "| | |")
                for lb in (lb for lb in CANDIDATES if lb in t):
                    mark = " (chosen)" if lb == r.get("chosen") else ""
                    lines.append(f"| {kk[2:]} | {t[lb]['n_draws']} | {lb}{mark} | "
                                 f"{pm(t[lb]['accuracy'])} | {pm(t[lb]['kappa'])} | "
                                 f"{pm(t[lb]['kappa_gain'], '+')} | "
                                 f"{t[lb]['seconds']['mean']:.0f} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(BANDPOWER_DIR))
    ap.add_argument("--lab", choices=("oldest", "atypical"), default="oldest")
    ap.add_argument("--draws", type=int, default=5, help="seeded draws per k")
    ap.add_argument("--n-val", type=int, default=6, help="validation subjects of the lab")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2, help="LightGBM threads")
    cheap = [lb for lb, (method, _) in CANDIDATES.items() if method != "refit"]
    ap.add_argument("--candidates", nargs="+", default=cheap, choices=list(CANDIDATES),
                    metavar="LABEL",
                    help=f"candidates to measure (of {', '.join(CANDIDATES)}; default all "
                         "but refit, a full training per draw: add it with fewer --draws); "
                         "those measured before are kept")
    ap.add_argument("--parts", nargs="+", default=["validation", "evaluation"],
                    choices=["validation", "evaluation"],
                    help="the lab parts to measure the candidates on this time (default "
                         "both); the results measured before are kept")
    args = ap.parse_args(argv)
    nights = load_bandpower(args.data)
    lab, criterion = lab_subjects(nights, args.lab)
    train_subjects = sorted({n.subject_id for n in nights} - set(lab))
    args.train_nights = [n for n in nights if n.subject_id in set(train_subjects)]
    rng = np.random.default_rng([args.seed, 28])
    val_subj = sorted(rng.choice(lab, size=args.n_val, replace=False).tolist())
    eval_subj = sorted(set(lab) - set(val_subj))
    base, card, fit_s = base_model(nights, train_subjects, args.seed, args.n_jobs)
    res = {**result_header("adapt", "benchmarks.adapt.run", argv, "nice -n 10 python"),
           "labs": {}}
    old = RESULTS / "adapt.json"
    commands = []
    if old.is_file():  # the other lab's results are kept, and this lab's earlier commands
        labs = json.loads(old.read_text()).get("labs", {})
        commands = [c for c in labs.get(args.lab, {}).get("commands", [])
                    if c != res["command"]]
        res["labs"] = {k: v for k, v in labs.items() if k != args.lab}
    state = CACHE / f"rows-{args.lab}-{args.seed}-{args.n_val}.json"
    cached = json.loads(state.read_text()) if state.is_file() else {}
    CACHE.mkdir(parents=True, exist_ok=True)
    lab_res = {"config": {"lab_rule": {"oldest": "the 12 oldest by age (years)",
                                       "atypical": "the 12 least typical by "
                                       "subject_atypicality (score)"}[args.lab],
                          "draws": args.draws, "seed": args.seed, "ks": list(KS),
                          "candidates": {k: {"method": m, "options": o}
                                         for k, (m, o) in CANDIDATES.items()},
                          "members_adapted": "night (boost, refit); whole model "
                                             "(recalibrate)",
                          "model_card": str(CARD.relative_to(ROOT)),
                          "data": "../shared/data/sleepedf_bandpower"},
               "commands": [*commands, res["command"]],
               "lab_subjects": lab, "lab_criterion": criterion,
               "validation_subjects": val_subj, "evaluation_subjects": eval_subj,
               "base": {"n_subjects": len(train_subjects), "n_nights": len(args.train_nights),
                        "fit_seconds": round(fit_s, 1)}}
    res["labs"][args.lab] = lab_res

    def save() -> None:
        from hypnoscope.utils.files import write_json_atomic

        write_json_atomic(state, cached)

    for part, subj in (("validation", val_subj), ("evaluation", eval_subj)):
        part_nights = [n for n in nights if n.subject_id in set(subj)]
        if part in args.parts:
            run_part(part, part_nights, base, args, cached, save)
        rows = {key: row for key, row in cached.items() if key.startswith(f"{part}|")}
        lab_res[part] = summarise(rows)
        if part == "validation":
            lab_res["chosen"] = choose(lab_res["validation"])
            lab_res["chosen_without_training_nights"] = choose(lab_res["validation"], True)
        write_results("adapt", res, markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
