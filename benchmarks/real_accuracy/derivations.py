"""One EEG derivation or another: the one-EEG model across Fpz-Cz and Pz-Oz (issue #25).

The one-EEG model (channel setup ``eeg1``) is trained three ways on the outer folds of
the other real-data benchmarks (:func:`hypnoscope.evaluation.splits.subject_kfold`, k=10,
seed 0; checked against ``benchmarks/results/real_folds.json``): on the training
subjects' Fpz-Cz band powers only, on their Pz-Oz band powers only, and on both as
interchangeable samples of "one EEG derivation" (channel sampling, as U-Sleep trains:
:func:`hypnoscope.staging.channel_setups.setup_nights` with the setup's pool). Each model
stages the test subjects' nights from each derivation, whole and in stretches
(:func:`hypnoscope.evaluation.stretches.sample_stretches`, the stretches of
``benchmarks.real_accuracy.stretches``, each staged as its own recording), so that the
table says what a model trained on one derivation loses on the other, and what the pooled
model gives up against a model trained on the derivation it is tested on.

``--setup eeg1-eog`` asks the same of the one-EEG + EOG model: its EEG slot trained on
Fpz-Cz, on Pz-Oz or on both (the EOG as it is), and each test night staged with either
derivation in that slot (``--candidate`` names any model of
:func:`benchmarks.real_accuracy.stretches.model_spec`, e.g. ``eeg1-eog@0.1``).

Resumable: each (training derivation, fold) result is cached in ``--state-dir``.

Usage (from the repository root)::

    nice -n 10 .venv/bin/python -m benchmarks.real_accuracy.derivations
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    BANDPOWER_DIR,
    ROOT,
    load_bandpower,
    result_header,
    write_results,
)
from benchmarks.real_accuracy import stretches as sb
from benchmarks.real_features import run as rf
from hypnoscope.evaluation.splits import regroup_folds, subject_kfold
from hypnoscope.evaluation.stretches import (
    cross_validate_stretches,
    sample_stretches,
    stretch_table,
)
from hypnoscope.staging.channel_setups import CHANNEL_SETUPS, setup_nights

DEFAULT_STATE = ROOT / "benchmarks" / "real_accuracy" / ".cache" / "derivations"
STATE_VERSION = 1
#: The training derivations compared: name -> views trained on (0: Fpz-Cz, 1: Pz-Oz).
TRAIN_ON = {"Fpz-Cz": (0,), "Pz-Oz": (1,), "both": (0, 1)}
TEST_ON = ("Fpz-Cz", "Pz-Oz")
#: Channel setups whose EEG slot can be studied here: name -> the layout channels of the
#: Pz-Oz view (the setup's slots with Pz-Oz in the EEG slot).
SETUP_POOLS = {"eeg1": (1,), "eeg1-eog": (1, 2)}


def views(nights, setup: str) -> list:
    """Every night twice, as ``setup`` reads it with Fpz-Cz and with Pz-Oz in its EEG slot
    (:func:`hypnoscope.staging.channel_setups.setup_nights` with that pool)."""
    from dataclasses import replace

    pooled = replace(CHANNEL_SETUPS[setup], pool=(SETUP_POOLS[setup],))
    return setup_nights(nights, pooled, pool=True)


def fold_rows(done, data, n_nights: int) -> dict[str, list[dict[str, Any]]]:
    """Per test derivation, the stretch table pooled over the folds done."""
    out = {}
    for v, test in enumerate(TEST_ON):
        st, yt, yp = [], [], []
        for f in done:
            for s, p in zip(f.stretches, f.proba, strict=True):
                if s.night // n_nights == v:
                    st.append(s)
                    yt.append(np.asarray(data[s.night].y)[s.start:s.stop])
                    yp.append(p.argmax(axis=1))
        out[test] = stretch_table(st, yt, yp)
    return out


def markdown(res: dict) -> str:
    lengths = sb.LENGTH_ORDER
    what = {"eeg1": "The one-EEG model", "eeg1-eog": "The one-EEG + EOG model"}[
        res["config"].get("setup", "eeg1")]
    L = [f"# {what} across derivations (Fpz-Cz, Pz-Oz)", "",
         f"Command: `{res['command']}`  ", f"Date: {res['date']}  ",
         f"Machine: {res['machine']}  ", "", res["protocol"], "",
         "## Accuracy (pooled over the epochs of the stretches of each length)", "",
         "| trained on | tested on | folds | " + " | ".join(lengths) + " |",
         "|---|---|---:|" + "---:|" * len(lengths)]
    for train, r in res["models"].items():
        for test, rows in r["tested_on"].items():
            by = {x["length"]: x["accuracy"] for x in rows}
            L.append(f"| {train} | {test} | {r['n_folds_done']} | " + " | ".join(
                sb.f3(by.get(k)) for k in lengths) + " |")
    if res.get("gaps"):
        L += ["", "## Against the model trained on the derivation tested (accuracy points)",
              "", "| model | tested on | " + " | ".join(lengths) + " |",
              "|---|---|" + "---:|" * len(lengths)]
        for g in res["gaps"]:
            L.append(f"| {g['model']} | {g['tested_on']} | " + " | ".join(
                "-" if g["points"].get(k) is None else f"{g['points'][k]:+.1f}"
                for k in lengths) + " |")
    L += ["", f"Model: `{res['config']['model']}` options "
          f"`{json.dumps(res['config']['options'])}` ("
          f"{res['config']['candidate']} of benchmarks.real_accuracy.stretches); training "
          "time per fold: " + ", ".join(f"{k} {v['train_s_per_fold']:.0f} s"
                                        for k, v in res["models"].items())]
    return "\n".join(L) + "\n"


def gaps(models: dict) -> list[dict[str, Any]]:
    """Each model on each derivation minus the model trained on that derivation alone."""
    out = []
    for train, r in models.items():
        for test, rows in r["tested_on"].items():
            if train == test or test not in models:
                continue
            ref = {x["length"]: x["accuracy"] for x in models[test]["tested_on"][test]}
            mine = {x["length"]: x["accuracy"] for x in rows}
            out.append({"model": f"trained on {train}", "tested_on": test,
                        "points": {k: 100 * (mine[k] - ref[k]) for k in mine if k in ref}})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(BANDPOWER_DIR))
    ap.add_argument("--setup", default="eeg1", choices=list(SETUP_POOLS),
                    help="the channel setup whose EEG slot is studied")
    ap.add_argument("--candidate", default="default+stretch4",
                    choices=[*sb.CANDIDATES, *sb.PREVIOUS],
                    help="the model trained (a stretches candidate, or a model of 0.1)")
    ap.add_argument("--train-on", nargs="*", default=list(TRAIN_ON), choices=list(TRAIN_ON))
    ap.add_argument("--max-folds", type=int, default=None)
    ap.add_argument("--per-night", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--state-dir", default=str(DEFAULT_STATE))
    ap.add_argument("--cached-only", action="store_true")
    ap.add_argument("--name", default=None, help="results file name (default "
                    "real_accuracy_derivations, with the setup's name after it if not eeg1)")
    args = ap.parse_args(argv)
    args.name = args.name or "real_accuracy_derivations" + (
        "" if args.setup == "eeg1" else "_" + args.setup.replace("-", ""))

    from hypnoscope.models import make_model

    t0 = time.perf_counter()
    nights = load_bandpower(args.data)
    folds = subject_kfold(nights, k=10, seed=args.seed)
    rf.check_folds(nights, folds, args.seed, 10)
    folds = folds[: args.max_folds] if args.max_folds else folds
    data = views(nights, args.setup)
    if len(data) != len(TEST_ON) * len(nights):
        raise SystemExit(f"expected {len(TEST_ON)} views of every night, got {len(data)} "
                         f"for {len(nights)} nights")
    stretches = sb.view_stretches(sample_stretches(nights, per_night=args.per_night,
                                                   seed=args.seed), len(nights), data)
    spec = sb.model_spec(args.candidate, args.n_jobs)
    model, options = spec["model"], spec["options"]
    res: dict[str, Any] = {
        **result_header("real_accuracy_derivations", "benchmarks.real_accuracy.derivations",
                        argv, "nice -n 10 python"),
        "protocol": (
            "Real data: 59 subjects / 115 nights of Sleep-EDF Expanded cassette band "
            "powers (Kemp et al. 2000; Goldberger et al. 2000; ODC-By). The "
            + {"eeg1": "one-EEG model", "eeg1-eog": "one-EEG + EOG model (EOG horizontal "
               "in its EOG slot throughout)"}[args.setup]
            + " is retrained on each outer fold of subject_kfold(k=10, seed=0) "
            "(benchmarks/results/real_folds.json) on the training subjects' Fpz-Cz, Pz-Oz "
            "or both in its EEG slot (every night once per derivation), and stages each "
            "test night from each derivation: the whole night and "
            f"{args.per_night} stretches of each of 2 h, 1 h and 30 min plus one nap-like "
            "30-min stretch per night, each as its own recording (the stretches of "
            "benchmarks.real_accuracy.stretches). Accuracy pooled over the scored epochs."),
        "config": {"candidate": args.candidate, "model": model, "setup": args.setup,
                   "options": {k: v for k, v in options.items() if k != "n_jobs"},
                   "per_night": args.per_night, "seed": args.seed,
                   "max_folds": args.max_folds},
        "models": {},
    }
    n = len(nights)
    for train in args.train_on:
        mask = np.zeros(len(data), dtype=bool)
        for v in TRAIN_ON[train]:
            mask[v * n:(v + 1) * n] = True
        key = json.dumps({"v": STATE_VERSION, "model": model, "options": res["config"][
            "options"], "train_on": train, "seed": args.seed, "data": args.data,
            **({} if args.setup == "eeg1" else {"setup": args.setup})}, sort_keys=True)
        done = cross_validate_stretches(
            data, lambda _f: make_model(model, seed=args.seed, **options),
            regroup_folds(folds, data, train_mask=mask), stretches,
            cache_dir=Path(args.state_dir) / train, cache_key=key,
            cached_only=args.cached_only,
            on_fold=lambda sf, train=train: print(f"trained on {train}: {sf.fold.name} done "
                                                  f"(train {sf.train_s:.0f} s)", flush=True))
        if done:  # "lengths"/"whole_night_cv" pooled over both derivations, as the
            # stretch benchmark's rows (a model card's stretch table reads either)
            res["models"][train] = {**sb.summarise(done, data),
                                    "tested_on": fold_rows(done, data, n)}
            whole = res["models"][train]["whole_night_cv"]
            whole["source"] = (f"benchmarks/results/{args.name}.json (whole nights, trained "
                               f"on {train}, tested on each derivation)")
            whole["protocol"] += ("; every test night staged from each derivation, "
                                  "Fpz-Cz and Pz-Oz")
        res["gaps"] = gaps(res["models"])
        res["run_time_s"] = time.perf_counter() - t0
        write_results(args.name, res, markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
