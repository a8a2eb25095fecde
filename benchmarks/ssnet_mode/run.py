"""SSNet many-to-one against many-to-many on the real Sleep-EDF band powers (seed 3).

The multimodal hierarchical README forms "temporal sequences of epochs" where "each
sequence predicts the last epoch label" (many-to-one); hypnoscope's sequence models train
many-to-many by default (every epoch of a window is a target, overlapping windows averaged
at inference). This benchmark trains the direct 5-class SSNet both ways on the same folds
with the settings of ``benchmarks/ssnet_real`` (``CHOSEN``: ``small`` preset, 32-epoch
sequences, 6 epochs, patience 2, per-night z-score, inference stride 4 for many-to-many):
the test subjects of ``benchmarks/results/real_folds.json`` with 10 % of each fold's
training subjects for validation (best epoch, early stopping), as there.

A many-to-one epoch of training holds one window per scored epoch, about ``seq_len / 2``
times the windows of a many-to-many epoch (stride ``seq_len / 2``), so it costs that much
more; on a shared 2-core CPU only ``--folds`` (default the first two) are run. Each
(fold, mode) run is stored in ``benchmarks/results/ssnet_mode_runs/`` when it finishes, so
an interrupted run resumes and ``--render-only`` re-renders (the runs of the given
``--seq-len``, ``--epochs`` and ``--patience`` only).

Run (from the repository root)::

    nice -n 10 python -m benchmarks.ssnet_mode.run
    nice -n 10 python -m benchmarks.ssnet_mode.run --folds 0 1 2 3 4 5 6 7 8 9   # all folds
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    BANDPOWER_DIR,
    RESULTS,
    load_bandpower,
    result_header,
    write_results,
)

MODES = ("many-to-many", "many-to-one")
STAGES = ("W", "N1", "N2", "N3", "R")
NAME = "ssnet_mode"


def run_one(i: int, fold, nights, mode: str, args) -> dict:
    """Train the direct 5-class SSNet of ``mode`` on fold ``i``; its test scores."""
    import torch

    from benchmarks.ssnet_real.run import CHOSEN
    from hypnoscope.evaluation.metrics import evaluate
    from hypnoscope.models import make_model

    torch.set_num_threads(args.threads)
    train, val, test = fold.select(nights)
    model = make_model("ssnet", n_classes=5, preset="small", mode=mode,
                       seq_len=args.seq_len, epochs=args.epochs, patience=args.patience,
                       batch_size=64, normalize=CHOSEN["normalize"],
                       infer_stride=CHOSEN["infer_stride"], seed=args.seed,
                       num_threads=args.threads, device="cpu")
    t0 = time.perf_counter()
    model.fit(train, val)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    pred = [np.asarray(model.predict(n)) for n in test]
    infer_s = (time.perf_counter() - t1) / len(test)
    y, p = np.concatenate([n.y for n in test]), np.concatenate(pred)
    keep = y >= 0
    e = evaluate(y[keep], p[keep], n_classes=5)
    summ = model.training_summary["direct"]
    return {"fold": fold.name, "index": i, "mode": mode,
            "test_subjects": list(fold.test_subjects),
            "scores": {k: e[k] for k in ("accuracy", "macro_f1", "kappa", "per_class_f1",
                                         "confusion_matrix", "n_epochs")},
            "train_s": train_s, "seconds_per_epoch": summ["seconds_per_epoch"],
            "epochs_run": summ["epochs_run"], "best_epoch": summ["best_epoch"],
            "n_train_windows": summ["n_train_windows"], "infer_s_per_night": infer_s}


def summarise(runs: list[dict]) -> dict:
    """Per-mode mean ± sd over folds, the paired difference on the folds both ran, and
    pooled per-stage F1 (from the summed confusion matrices)."""
    out: dict = {"modes": {}, "paired": None}
    for mode in MODES:
        rs = [r for r in runs if r["mode"] == mode]
        if not rs:
            continue
        entry = {"folds": [r["index"] for r in rs]}
        for k in ("accuracy", "macro_f1", "kappa"):
            v = np.array([r["scores"][k] for r in rs])
            entry[k] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1
                        else 0.0}
        cm = np.sum([np.asarray(r["scores"]["confusion_matrix"]) for r in rs], axis=0)
        f1 = 2 * np.diag(cm) / np.maximum(cm.sum(0) + cm.sum(1), 1)
        entry["pooled_per_class_f1"] = dict(zip(STAGES, map(float, f1), strict=True))
        entry["pooled_accuracy"] = float(np.trace(cm) / cm.sum())
        for k in ("train_s", "seconds_per_epoch", "n_train_windows", "epochs_run",
                  "infer_s_per_night"):
            entry[k] = float(np.mean([r[k] for r in rs]))
        out["modes"][mode] = entry
    both = sorted({r["index"] for r in runs if r["mode"] == MODES[0]}
                  & {r["index"] for r in runs if r["mode"] == MODES[1]})
    if both:
        acc = {(r["index"], r["mode"]): r["scores"]["accuracy"] for r in runs}
        d = np.array([acc[(i, MODES[1])] - acc[(i, MODES[0])] for i in both])
        out["paired"] = {"folds": both, "many_to_one_minus_many_to_many": d.tolist(),
                         "mean": float(d.mean()),
                         "sd": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                         "many_to_one_better_in": int((d > 0).sum())}
    return out


def render(res: dict) -> str:
    """The markdown report."""
    s, cfg = res["summary"], res["config"]
    lines = ["# SSNet many-to-one vs many-to-many on the REAL band powers (seed 3)", "",
             f"{res['date']} · command `{res['command']}` · {res['machine']}", "",
             f"Data: {res['data']}", "",
             f"Protocol: the test subjects of `{cfg['fold_source']}` (folds "
             f"{', '.join(str(i + 1) for i in cfg['folds'])} of 10), 10 % of each fold's "
             "training subjects for validation (best epoch by validation accuracy, early "
             f"stopping); SSNet direct 5-class, preset `small`, seq_len {cfg['seq_len']}, at "
             f"most {cfg['epochs']} epochs, patience {cfg['patience']}, batch 64, per-night "
             f"z-score, {cfg.get('threads', 1)} torch thread(s) (the settings of "
             "`benchmarks/ssnet_real`, whose chosen seq_len is 32 and epochs 6). "
             "Many-to-one: one window per epoch, ending at it; many-to-many: windows with "
             "stride seq_len / 2 in training, stride 4 averaged at inference.", "",
             "| mode | folds | accuracy % | macro-F1 % | kappa % | W | N1 | N2 | N3 | R | "
             "training windows | s / training epoch | epochs run | training s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for mode, e in s["modes"].items():
        cells = [f"{100 * e[k]['mean']:.1f} ± {100 * e[k]['sd']:.1f}" if len(e["folds"]) > 1
                 else f"{100 * e[k]['mean']:.1f}" for k in ("accuracy", "macro_f1", "kappa")]
        f1 = [f"{100 * e['pooled_per_class_f1'][st]:.1f}" for st in STAGES]
        lines.append(f"| {mode} | {len(e['folds'])} | " + " | ".join(cells + f1)
                     + f" | {e['n_train_windows']:.0f} | {e['seconds_per_epoch']:.1f} | "
                       f"{e['epochs_run']:.1f} | {e['train_s']:.0f} |")
    lines += ["", "Mean ± sd over folds; per-stage F1 pooled over the folds' test epochs."]
    if len(s["modes"]) == 2:
        ratio = (s["modes"]["many-to-one"]["train_s"]
                 / max(s["modes"]["many-to-many"]["train_s"], 1e-9))
        lines += ["", f"Many-to-one took {ratio:.1f} times the training time of many-to-many. "
                      "Times were taken on a shared machine with other jobs running: they "
                      "compare the two modes, they do not measure an idle CPU."]
    p = s["paired"]
    if p:
        spread = f" ± {100 * p['sd']:.2f}" if len(p["folds"]) > 1 else ""
        lines += ["", f"Paired accuracy difference, many-to-one minus many-to-many, on "
                      f"{len(p['folds'])} fold(s): {100 * p['mean']:+.2f}{spread} points "
                      f"(many-to-one better in {p['many_to_one_better_in']}/"
                      f"{len(p['folds'])})."
                      + (" One fold: a single paired difference, no estimate of its "
                         "spread across folds." if len(p["folds"]) == 1 else "")]
    if len(cfg["folds"]) < 10:
        lines += ["", f"Only {len(cfg['folds'])} of the 10 folds were run, with at most "
                      f"{cfg['epochs']} epochs (the CPU budget of a shared 2-core machine: "
                      "many-to-one trains on about seq_len / 2 times more windows per epoch); "
                      "`--folds 0 1 2 3 4 5 6 7 8 9 --seq-len 32 --epochs 6` runs the "
                      "`ssnet_real` setting on them all."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.ssnet_real.run import CHOSEN, FOLDS_FILE, load_folds
    from hypnoscope.utils.files import write_json_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(BANDPOWER_DIR))
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1],
                    help="0-based fold indices of real_folds.json (default the first two)")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--seq-len", type=int, default=CHOSEN["seq_len"])
    ap.add_argument("--epochs", type=int, default=CHOSEN["epochs"])
    ap.add_argument("--patience", type=int, default=CHOSEN["patience"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--runs-dir", default=str(RESULTS / f"{NAME}_runs"))
    args = ap.parse_args(argv)
    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    nights = load_bandpower(args.data)
    folds, source = load_folds(nights, FOLDS_FILE, 0.1, args.seed)
    tag = f"L{args.seq_len}_e{args.epochs}_p{args.patience}"  # runs of one setting only
    if not args.render_only:
        for i in args.folds:
            for mode in args.modes:
                path = runs_dir / f"fold{i:02d}__{mode}__{tag}.json"
                if not path.is_file():
                    write_json_atomic(path, run_one(i, folds[i], nights, mode, args))
                    print(f"fold {i + 1} {mode} done", flush=True)
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob(f"fold*__*__{tag}.json"))]
    if not runs:
        raise SystemExit(f"no finished run of {tag} in {runs_dir}")
    header = result_header(NAME, "benchmarks.ssnet_mode.run", argv, "nice -n 10 python")
    stored = RESULTS / f"{NAME}.json"
    if args.render_only and stored.is_file():  # the measuring run's command and date
        old = json.loads(stored.read_text())
        header = {**header, **{k: old[k] for k in ("date", "machine", "command")},
                  "rendered": header["date"]}
    res = {**header,
           "data": (f"{len({n.subject_id for n in nights})} subjects / {len(nights)} nights "
                    "of real per-epoch band-power features (3 channels × 10 features), "
                    "PhysioNet Sleep-EDF Expanded (Kemp et al. 2000; ODC-By)"),
           "config": {"fold_source": source, "folds": sorted({r["index"] for r in runs}),
                      "seq_len": args.seq_len, "epochs": args.epochs,
                      "patience": args.patience, "threads": args.threads,
                      "seed": args.seed},
           "summary": summarise(runs), "runs": runs}
    md = render(res)
    write_results(NAME, res, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
