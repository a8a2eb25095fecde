"""MC²SleepNet on real Sleep-EDF-78: the paper's 10-fold subject-wise protocol.

For users with the data and, ideally, a GPU::

    hypnoscope fetch --subset sleep-edf-78 --out DIR      # 153 cassette nights, ~8 GB
    python -m benchmarks.mc2sleepnet.sleepedf78 --data DIR --preset paper --device cuda

The recordings are read by :func:`hypnoscope.signal.nights.load_psg_dir` (EEG Fpz-Cz only,
100 Hz, 30 min of wake around sleep, as the paper's preprocessing); the subjects are
dealt into ``--folds`` folds (:func:`hypnoscope.evaluation.splits.subject_kfold`), 10 % of each
fold's training subjects validate (early stopping, checkpoints). Each fold trains
MC²SleepNet (pre-training with InfoNCE and cross-masking, then fine-tuning) and stores
its test probabilities as soon as it finishes
(:func:`hypnoscope.evaluation.cross_validation.cross_validate`), so an interrupted run
resumes; the
report (``benchmarks/results/<name>.md`` and ``.json``) pools every test epoch
(accuracy, macro-F1, kappa, per-stage F1, as the paper's Table 5) and lists each fold.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, ROOT, command_line, now_utc

CHANNEL = "EEG Fpz-Cz"
#: the paper's Sleep-EDF-78 row of Table 5
PAPER = {"accuracy": 0.846, "macro_f1": 0.792, "kappa": 0.788}


def fold_result(test, probas) -> dict:
    """Pooled 5-class metrics of one fold's test nights."""
    from hypnoscope.evaluation.metrics import evaluate

    y = np.concatenate([n.y for n in test])
    p = np.concatenate(probas).argmax(1)
    keep = y >= 0
    e = evaluate(y[keep], p[keep], n_classes=5)
    return {k: e[k] for k in ("accuracy", "macro_f1", "kappa", "per_class_f1", "n_epochs")}


def main(argv: list[str] | None = None) -> int:
    import platform

    from hypnoscope.evaluation.cross_validation import cross_validate
    from hypnoscope.evaluation.splits import subject_kfold
    from hypnoscope.models import make_model
    from hypnoscope.signal.nights import load_psg_dir
    from hypnoscope.utils.files import write_json_atomic, write_text_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True,
                    help="Sleep-EDF cassette PSG + hypnogram pairs (hypnoscope fetch)")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="paper", help="mc2sleepnet preset (paper, small)")
    ap.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs")
    ap.add_argument("--pretrain-epochs", type=int, default=None)
    ap.add_argument("--mask-ratio", type=float, default=0.5)
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda if present)")
    ap.add_argument("--max-epochs-per-night", type=int, default=None,
                    help="keep only the middle epochs of each night (smoke tests)")
    ap.add_argument("--net", default="{}",
                    help="JSON of network overrides, e.g. '{\"d_model\": 16}' (smoke tests)")
    ap.add_argument("--name", default="mc2sleepnet_sleepedf78")
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    work = Path(args.work_dir or ROOT / ".cache" / args.name)
    runs = work / "folds"
    t0 = time.perf_counter()
    nights = load_psg_dir(args.data, eeg=[CHANNEL], cache=str(work / "cache"),
                          on_error="warn")
    if args.max_epochs_per_night:
        from benchmarks.msmae_cnn import protocol

        nights = protocol.middle(nights, args.max_epochs_per_night)
    folds = subject_kfold(nights, k=args.folds, seed=args.seed, val=0.1)
    options = {"preset": args.preset, "mask_ratio": args.mask_ratio, "seed": args.seed,
               "device": args.device, **json.loads(args.net)}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    if args.pretrain_epochs is not None:
        options["pretrain_epochs"] = args.pretrain_epochs
    fold_no = {f.name: i + 1 for i, f in enumerate(folds)}

    def model_for(fold):
        return make_model("mc2sleepnet",
                          checkpoint_dir=str(work / "ckpt" / f"fold{fold_no[fold.name]}"),
                          resume=True, **options)

    cv = cross_validate(nights, model_for, folds=folds, cache_dir=runs,
                        cache_key=json.dumps({k: v for k, v in options.items()
                                              if k != "device"}, sort_keys=True),
                        score=lambda y, p: {}, desc="folds")
    per_fold = []
    for rec in cv.records:
        test = [nights[i] for i in rec.fold.test]
        probas = [p for _, p in rec.nights()]
        per_fold.append({"fold": rec.fold.to_dict(), "train_s": rec.train_s,
                         "scores": fold_result(test, probas), "probas": probas,
                         "test": test})
    pooled = fold_result([n for f in per_fold for n in f["test"]],
                         [p for f in per_fold for p in f["probas"]])
    accs = [f["scores"]["accuracy"] for f in per_fold]
    meta = {"title": "MC²SleepNet on REAL Sleep-EDF-78, 10-fold subject-wise CV",
            "date": now_utc(),
            "command": command_line("benchmarks.mc2sleepnet.sleepedf78", argv),
            "machine": f"{platform.platform()}, python {platform.python_version()}",
            "settings": vars(args), "options": options, "wall_s": time.perf_counter() - t0,
            "n_subjects": len({n.subject_id for n in nights}), "n_nights": len(nights)}
    f1 = pooled["per_class_f1"]
    lines = [f"# {meta['title']}", "", f"{meta['date']} · `{meta['command']}`", "",
             f"{meta['n_subjects']} subjects / {meta['n_nights']} nights from "
             f"`{args.data}`; {args.folds} subject-wise folds (seed {args.seed}), 10 % of "
             "each fold's training subjects for validation.", "",
             "| | accuracy | macro-F1 | kappa | W | N1 | N2 | N3 | R |", "|---|---|---|---|---|"
             "---|---|---|---|",
             f"| pooled | {100 * pooled['accuracy']:.1f} | {100 * pooled['macro_f1']:.1f} | "
             f"{pooled['kappa']:.3f} | " + " | ".join(f"{100 * f1[s]:.1f}" for s in
                                                     ("W", "N1", "N2", "N3", "R")) + " |",
             f"| paper (Table 5) | {100 * PAPER['accuracy']:.1f} | "
             f"{100 * PAPER['macro_f1']:.1f} | {PAPER['kappa']:.3f} | | | | | |", "",
             f"Per fold accuracy: {', '.join(f'{a:.3f}' for a in accs)} (worst "
             f"{min(accs):.3f}, sd {np.std(accs):.3f})."]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{args.name}.json", {
        "meta": meta, "pooled": pooled,
        "folds": [{k: v for k, v in f.items() if k not in ("probas", "test")}
                  for f in per_fold]})
    write_text_atomic(out / f"{args.name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
