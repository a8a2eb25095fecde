"""MC²SleepNet on real Sleep-EDF-78: the paper's 10-fold subject-wise protocol.

For users with the data and, ideally, a GPU::

    hypnoscope fetch --subset sleep-edf-78 --path DIR     # 153 cassette nights, ~8 GB
    python -m benchmarks.mc2sleepnet.sleepedf78 --data DIR --preset paper --device cuda

The recordings are read by :func:`hypnoscope.signal.nights.load_psg_dir` (EEG Fpz-Cz only,
100 Hz, 30 min of wake around sleep, as the paper's preprocessing; no band-pass, as the
paper states none: the ``"mc2sleepnet"`` preprocessing preset, ``--bandpass default`` for
the loaders' 0.3-35 Hz EEG band-pass); the subjects are
dealt into ``--folds`` folds (:func:`hypnoscope.evaluation.splits.subject_kfold`), 10 % of each
fold's training subjects validate (early stopping, checkpoints). Each fold trains
MC²SleepNet from scratch on Sleep-EDF: by default the pre-training step only (InfoNCE and
cross-masking), the paper's "Γ" setting for Sleep-EDF-78 (Table 5, "to prevent the
overfitting problem in the small size dataset, we conduct only the pre-training step"),
compared with its Γ row at the same masking ratio (50 % or 15 %); ``--finetune`` adds the
fine-tuning phase, a setting the paper reports for Sleep-EDF-78 only after pre-training on
SHHS 5463 (its "+" row, listed for reference, not comparable). Each fold stores
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
STAGES = ("W", "N1", "N2", "N3", "R")
#: the paper's MC²SleepNet rows of Table 5 for Sleep-EDF-78 (accuracy, macro-F1, kappa,
#: per-stage F1): "Γ" = pre-training only, from scratch on Sleep-EDF-78, at a masking ratio
#: of 50 % or 15 %; "+" = pre-trained on SHHS 5463, fine-tuned on Sleep-EDF-78
PAPER_ROWS = {
    "50%Γ": {"accuracy": 0.844, "macro_f1": 0.785, "kappa": 0.784,
             "per_class_f1": dict(zip(STAGES, (0.933, 0.493, 0.865, 0.788, 0.846), strict=True))},
    "15%Γ": {"accuracy": 0.844, "macro_f1": 0.787, "kappa": 0.784,
             "per_class_f1": dict(zip(STAGES, (0.933, 0.494, 0.864, 0.800, 0.842), strict=True))},
    "+": {"accuracy": 0.846, "macro_f1": 0.791, "kappa": 0.787,
          "per_class_f1": dict(zip(STAGES, (0.931, 0.506, 0.865, 0.806, 0.845), strict=True))},
}
#: the row this script's default setting (pre-training only, 50 % masking) reproduces
PAPER = PAPER_ROWS["50%Γ"]


def paper_rows(mask_ratio: float, finetune: bool) -> list[tuple[str, dict, bool]]:
    """The paper rows to print beside a run: ``(label, row, comparable)``.

    The Γ row at the run's masking ratio is comparable when the run pre-trains only
    (``finetune=False``); the "+" row (pre-trained on SHHS) never is, as this script trains
    on Sleep-EDF alone. A ratio the paper does not report for Sleep-EDF-78 has no Γ row.
    """
    rows = []
    label = {0.5: "50%Γ", 0.15: "15%Γ"}.get(round(float(mask_ratio), 4))
    if label is not None:
        rows.append((label, PAPER_ROWS[label], not finetune))
    rows.append(("+", PAPER_ROWS["+"], False))
    return rows


def _paper_line(label: str, row: dict, comparable: bool) -> str:
    what = ("pre-training only, Sleep-EDF-78" if label.endswith("Γ") else
            "pre-trained on SHHS 5463, fine-tuned on Sleep-EDF-78")
    tag = "" if comparable else "; not this run's setting"
    f1 = row["per_class_f1"]
    return (f"| paper MC²SleepNet {label} ({what}{tag}) | {100 * row['accuracy']:.1f} | "
            f"{100 * row['macro_f1']:.1f} | {row['kappa']:.3f} | "
            + " | ".join(f"{100 * f1[s]:.1f}" for s in STAGES) + " |")


def preprocessing(bandpass: str = "none") -> dict:
    """The continuous preprocessing of the MC²SleepNet scripts: the ``"mc2sleepnet"``
    preset (no filter), or with the loaders' default band-pass (``bandpass="default"``)."""
    from hypnoscope.signal.preprocessing import PRESETS

    if bandpass not in ("none", "default"):
        raise ValueError(f"bandpass must be 'none' or 'default', got {bandpass!r}")
    return {**PRESETS["mc2sleepnet"], "bandpass": None if bandpass == "none" else "default"}


#: the MC²SleepNet arms of the paper's Tables 3 and 4 (``--arm``), from the simulated
#: benchmark's ARMS
def arm_options(arm: str | None) -> dict:
    """The model options of a Table 3/4 arm of ``benchmarks/mc2sleepnet/run.py`` (None:
    none)."""
    if arm is None:
        return {}
    from benchmarks.mc2sleepnet.run import ARMS

    if arm not in ARMS or arm in ("ssnet", "cnn"):
        raise ValueError(f"unknown MC²SleepNet arm {arm!r}")
    return dict(ARMS[arm][1])


def run_name(base: str, arm: str | None, mask_ratio: float, finetune: bool,
             default_finetune: bool) -> str:
    """The default result name (and work folder) of a setting: each setting its own, so a
    resumed run never continues another setting's checkpoints."""
    name = base + (f"_{arm}" if arm else "" if round(mask_ratio, 4) == 0.5
                   else f"_mask{100 * mask_ratio:g}")
    if finetune != default_finetune:
        name += "_ft" if finetune else "_pt"
    return name


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
    ap.add_argument("--finetune", action="store_true",
                    help="fine-tune after pre-training (the paper's Sleep-EDF-78 rows are "
                         "pre-training only, 'Γ')")
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda if present)")
    ap.add_argument("--bandpass", choices=("none", "default"), default="none",
                    help="EEG band-pass: none (the paper states none) or the loaders' "
                         "default 0.3-35 Hz")
    ap.add_argument("--max-epochs-per-night", type=int, default=None,
                    help="keep only the middle epochs of each night (smoke tests)")
    ap.add_argument("--net", default="{}",
                    help="JSON of network overrides, e.g. '{\"d_model\": 16}' (smoke tests)")
    ap.add_argument("--arm", default=None,
                    help="an MC²SleepNet arm of the paper's Table 3/4 (tf-only, cnn-only, "
                         "multi, cl-ft, m-ft, pt-ft, mask-0.15 ...: its options over "
                         "--mask-ratio; see benchmarks/mc2sleepnet/run.py ARMS)")
    ap.add_argument("--name", default=None,
                    help="default mc2sleepnet_sleepedf78, with the arm, a masking ratio "
                         "other than 50 %% or --finetune appended")
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    args.name = args.name or run_name("mc2sleepnet_sleepedf78", args.arm, args.mask_ratio,
                                      args.finetune, False)
    work = Path(args.work_dir or ROOT / ".cache" / args.name)
    runs = work / "folds"
    t0 = time.perf_counter()
    nights = load_psg_dir(args.data, eeg=[CHANNEL], cache=str(work / "cache"),
                          on_error="warn", preprocessing=preprocessing(args.bandpass))
    if args.max_epochs_per_night:
        from benchmarks.msmae_cnn import protocol

        nights = protocol.middle(nights, args.max_epochs_per_night)
    folds = subject_kfold(nights, k=args.folds, seed=args.seed, val=0.1)
    options = {"preset": args.preset, "mask_ratio": args.mask_ratio, "seed": args.seed,
               "finetune": bool(args.finetune), "device": args.device,
               **arm_options(args.arm), **json.loads(args.net)}
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
                                                     STAGES) + " |",
             *(_paper_line(*r) for r in paper_rows(args.mask_ratio, args.finetune)), "",
             "This run: " + ("pre-training then fine-tuning" if args.finetune
                             else "pre-training only (Γ)")
             + f", masking ratio {100 * args.mask_ratio:g} %; paper rows from its Table 5.",
             "",
             f"Per fold accuracy: {', '.join(f'{a:.3f}' for a in accs)} (worst "
             f"{min(accs):.3f}, sd {np.std(accs):.3f})."]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{args.name}.json", {
        "meta": meta, "pooled": pooled,
        "paper": [{"row": label, "comparable": comparable, **row}
                  for label, row, comparable in paper_rows(args.mask_ratio, args.finetune)],
        "folds": [{k: v for k, v in f.items() if k not in ("probas", "test")}
                  for f in per_fold]})
    write_text_atomic(out / f"{args.name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
