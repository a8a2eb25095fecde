"""Choose SSNet settings on validation subjects only (never the test folds).

For the first ``--folds`` folds of ``benchmarks.ssnet_real.run`` (same test folds and
the same validation subjects carved out of each fold's training subjects), train the
direct 5-class SSNet on the training subjects with each candidate setting and score it on
the validation subjects (night-level accuracy after averaging the overlapping windows,
for each inference stride). Test subjects are never loaded into any model. Results go
to ``benchmarks/results/ssnet_real_selection.json|.md``.

Run (from the repository root)::

    nice -n 10 env OMP_NUM_THREADS=1 python -m benchmarks.ssnet_real.explore
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from benchmarks.common import RESULTS, command_line, load_bandpower, machine_line, now_utc
from benchmarks.ssnet_real.run import FOLDS_FILE, load_folds
from hypnoscope.models import make_model
from hypnoscope.utils.files import write_json_atomic, write_text_atomic

#: candidate settings (v1 = the settings of the first complete run)
CANDIDATES: dict[str, dict] = {
    "v1 seq16": {"seq_len": 16},
    "seq32": {"seq_len": 32},
    "seq64": {"seq_len": 64},
    "seq32 robust": {"seq_len": 32, "normalize": "robust"},
    "seq32 ls0.1": {"seq_len": 32, "label_smoothing": 0.1},
    "seq32 10ep p3": {"seq_len": 32, "epochs": 10, "patience": 3},
}
#: what was chosen from these runs (the default of ``benchmarks.ssnet_real.run``)
CHOICE_NOTE = (
    "Chosen: seq_len 32 with inference stride 4 (each epoch averaged over the 8 "
    "overlapping many-to-many windows covering it), per-night z-score, no label "
    "smoothing, 6 epochs / patience 2 -- best on fold 0's validation subjects and better "
    "than seq_len 16 on fold 1's as well. seq_len 64, robust (median/IQR) normalisation "
    "and label smoothing 0.1 were lower on fold 0's validation subjects; the '10 epochs, "
    "patience 3' candidate was not run (CPU budget of the full 10-fold run). Test folds "
    "were not used for any of these choices.")
BASE = {"preset": "small", "epochs": 6, "patience": 2, "mode": "many-to-many",
        "batch_size": 64}


def night_accuracy(model, nights) -> float:
    y = np.concatenate([n.y for n in nights])
    p = np.concatenate([model.predict_proba(n).argmax(1) for n in nights])
    k = y >= 0
    return float((p[k] == y[k]).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, nargs="+", default=[0])
    ap.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="ssnet_real_selection")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    nights = load_bandpower()
    folds, _ = load_folds(nights, FOLDS_FILE, 0.1, args.seed)
    out_file = RESULTS / f"{args.name}.json"
    out = json.loads(out_file.read_text()) if out_file.is_file() else {"runs": {}}
    for fi in args.folds:
        train, val, _test = folds[fi].select(nights)
        del _test  # test subjects are never used here
        for cname in args.candidates:
            key = f"fold{fi:02d} | {cname}"
            if key in out["runs"]:
                continue
            cfg = {**BASE, **CANDIDATES[cname]}
            m = make_model("ssnet", n_classes=5, seed=args.seed, num_threads=1,
                           device="cpu", **cfg)
            t0 = time.perf_counter()
            m.fit(train, val)
            secs = time.perf_counter() - t0
            acc = {}
            for stride in (None, 4, 1):
                m.config["infer_stride"] = stride
                acc[f"infer_stride={stride or cfg['seq_len'] // 2}"] = night_accuracy(m, val)
            s = m.training_summary["direct"]
            out["runs"][key] = {"fold": fi, "candidate": cname, "config": cfg,
                                "val_subjects": list(folds[fi].val_subjects),
                                "val_accuracy": acc, "best_epoch": s["best_epoch"],
                                "epochs_run": s["epochs_run"], "train_s": secs}
            print(key, json.dumps(acc), f"{secs:.0f}s", file=sys.stderr, flush=True)
            out.update({"date": now_utc(), "machine": machine_line(),
                        "command": command_line("benchmarks.ssnet_real.explore", argv,
                                                "nice -n 10 env OMP_NUM_THREADS=1 python"),
                        "base_config": BASE})
            write_json_atomic(out_file, out)
    lines = ["# SSNet settings chosen on validation subjects (real band-power set)", "",
             "Night-level accuracy (%) on the inner validation subjects of the listed folds "
             "(carved out of the training subjects; test subjects never used). Every "
             "candidate: preset small, many-to-many, AdamW + cosine, batch 64, seed 0.", "",
             "| fold | candidate | best epoch | " + " | ".join(
                 ["infer stride L/2", "infer stride 4", "infer stride 1"]) + " | train s |",
             "|---|---|---|---|---|---|---|"]
    for r in out["runs"].values():
        v = list(r["val_accuracy"].values())
        lines.append(f"| {r['fold']} | {r['candidate']} | {r['best_epoch']} | "
                     + " | ".join(f"{x * 100:.2f}" for x in v) + f" | {r['train_s']:.0f} |")
    folds_of: dict[str, dict[int, dict]] = {}
    for r in out["runs"].values():
        folds_of.setdefault(r["candidate"], {})[r["fold"]] = r["val_accuracy"]
    both = {c: v for c, v in folds_of.items() if len(v) > 1}
    if both:
        shared = set.intersection(*(set(v) for v in both.values()))
        lines += ["", f"Mean over folds {sorted(shared)} (candidates run on all of them):",
                  "", "| candidate | infer stride L/2 | infer stride 4 | infer stride 1 |",
                  "|---|---|---|---|"]
        for c, v in both.items():
            m = np.mean([list(v[f].values()) for f in sorted(shared)], axis=0)
            lines.append(f"| {c} | " + " | ".join(f"{x * 100:.2f}" for x in m) + " |")
    lines += ["", CHOICE_NOTE]
    write_text_atomic(RESULTS / f"{args.name}.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
