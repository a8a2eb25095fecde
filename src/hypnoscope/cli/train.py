"""``hypnoscope train``, ``hypnoscope evaluate`` and ``hypnoscope models``.

- ``train --model NAME (--features DIR | --data DIR) --out MODEL_PATH`` trains any
  registered model on a directory of per-night feature ``.npz`` files or of raw Sleep-EDF
  style PSG + hypnogram EDF pairs and saves it.
- ``evaluate --model MODEL_PATH (--features DIR | --data DIR) [--json]`` prints accuracy,
  macro-F1, Cohen's kappa, per-class F1 and the confusion matrix.
- ``models`` lists every model name ``train`` accepts, and the shipped pretrained models.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hypnoscope.cli import CLIError
from hypnoscope.cli.stats import add_label_map_arg


def _add_input_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--features", metavar="DIR",
                     help="directory of per-night .npz files with 'features' and 'labels' "
                          "(optionally 'onsets_sec'; subject from a JSON sidecar's "
                          "'subject_id' or --subject-pattern)")
    src.add_argument("--data", metavar="DIR",
                     help="directory of raw PSG recordings with their scoring "
                          "(Sleep-EDF naming: *-PSG.edf with *-Hypnogram.edf; NSRR naming: "
                          "shhs1-200001.edf with shhs1-200001-nsrr.xml or -profusion.xml; any "
                          "format MNE reads), or a BIDS root (sub-*/[ses-*/]eeg/*_eeg.* with "
                          "the scored stages of *_events.tsv)")
    p.add_argument("--subject-pattern", default=None, metavar="RE",
                   help="regex whose first group is the subject id in a file name "
                        "(default: leading digits for --features, the Sleep-EDF name "
                        "SCssN/STssN for --data)")
    p.add_argument("--eeg", nargs="+", default=None, help="EEG channel name(s) (--data)")
    p.add_argument("--eog", nargs="+", default=None, help="EOG channel name(s) (--data)")
    p.add_argument("--emg", nargs="+", default=None, help="EMG channel name(s) (--data)")
    add_label_map_arg(p)  # the hypnograms of --data
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="--data recordings read and preprocessed in parallel by local "
                        "processes (default 1); finished ones are kept in the recording "
                        "cache, so a rerun resumes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="read and preprocess the --data recordings on a Dask distributed "
                        "cluster, e.g. tcp://HOST:8786 (--data and $HYPNOSCOPE_CACHE must "
                        "be the same shared folders on every worker); instead of --jobs")


def register(subparsers) -> None:
    """Add the ``train``, ``evaluate`` and ``models`` sub-commands."""
    p = subparsers.add_parser(
        "train", help="train a staging model on feature files or raw recordings",
        description="Train a staging model (see 'hypnoscope models') and save it.")
    p.add_argument("--model", required=True, metavar="NAME",
                   help="model name, e.g. lightgbm-context (list: 'hypnoscope models')")
    _add_input_args(p)
    p.add_argument("--out", required=True, metavar="MODEL_PATH",
                   help="output model file (checked for writing before training starts)")
    p.add_argument("--strict", action="store_true",
                   help="refuse to train if reading any night gave a warning (units "
                        "rescaled, flat channel, ...): the error lists them all")
    p.add_argument("--classes", type=int, choices=(5, 3), default=None,
                   help="5 classes (W,N1,N2,N3,R) or 3 (W,NREM,R); default 5, or 3 for "
                        "the hierarchical models (*-hier)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    deep = p.add_argument_group("sequence (deep) models only")
    deep.add_argument("--seq-len", type=int, default=None,
                      help="epochs per input sequence (sequence models only)")
    deep.add_argument("--preset", default=None,
                      help="model size preset (sequence models only)")
    deep.add_argument("--epochs", type=int, default=None,
                      help="training epochs (sequence models only)")
    deep.add_argument("--checkpoint-dir", default=None,
                      help="checkpoint folder (sequence models only; default MODEL_PATH.ckpt)")
    deep.add_argument("--resume", action="store_true",
                      help="resume from the last checkpoint (sequence models only)")
    deep.add_argument("--val-fraction", type=float, default=0.15,
                      help="fraction of subjects held out for validation / early stopping, "
                           "whole subjects, at least one when there are 2 or more; 0 = "
                           "none (sequence models only; default 0.15, the default of "
                           "hypnoscope.evaluation.splits.validation_split)")
    _add_pretraining_args(p)
    p.set_defaults(func=_train)

    e = subparsers.add_parser(
        "evaluate", help="score a trained model against expert labels",
        description="Print accuracy, macro-F1, Cohen's kappa, per-class F1 and the "
                    "confusion matrix of a trained model on labelled nights.")
    e.add_argument("--model", required=True, metavar="MODEL_PATH", help="trained model file")
    _add_input_args(e)
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(func=_evaluate)

    m = subparsers.add_parser("models", help="list the model names and pretrained models",
                              description="List every model name 'train' accepts.")
    m.add_argument("--json", action="store_true", help="print as JSON")
    m.set_defaults(func=_models)


# -- helpers ----------------------------------------------------------------------------

def _load_nights(args) -> list:
    from hypnoscope import datasets
    from hypnoscope.io import recordings

    if args.features:
        return datasets.load_feature_dir(args.features,
                                         subject_pattern=args.subject_pattern or r"^(\d+)")
    kw: dict[str, Any] = {}
    if args.subject_pattern:
        kw["subject_pattern"] = args.subject_pattern
    for role in ("eeg", "eog", "emg"):
        if getattr(args, role):
            kw[role] = getattr(args, role)
    if getattr(args, "label_map", None):
        kw["label_map"] = args.label_map
    if getattr(args, "preprocessing", None) is not None:
        kw["preprocessing"] = args.preprocessing
    jobs, scheduler = getattr(args, "jobs", 1), getattr(args, "scheduler", None)
    if jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {jobs}")
    if scheduler is not None and jobs != 1:
        raise CLIError("give --jobs (local processes) or --scheduler (a Dask cluster), "
                       "not both")
    if getattr(args, "func", None) is _train:  # per-recording summary beside the model
        kw["summary_csv"] = f"{args.out}.recordings.csv"
    nights = recordings.load_psg_dir(args.data, jobs=jobs, scheduler=scheduler, **kw)
    if not nights:
        raise FileNotFoundError(f"no PSG + hypnogram pairs found in {args.data}")
    return nights


def _night_notices(nights) -> list:
    """Every warning that reading the nights produced (``meta["notices"]`` and the
    reader's messages), each naming its recording."""
    from hypnoscope.notices import Notice, Notices

    out = Notices()
    for night in nights:
        meta = getattr(night, "meta", None) or {}
        src = str(meta.get("source") or getattr(night, "night_id", "night"))
        items = list(meta.get("notices") or [])
        known = {(n.message if isinstance(n, Notice) else n.get("message")) for n in items}
        items += [Notice("reader-warning", m) for m in
                  ((meta.get("reader") or {}).get("warnings") or []) if m not in known]
        for n in items:
            n = n if isinstance(n, Notice) else Notice(**n)
            if src not in n.message:
                n = Notice(n.code, f"{src}: {n.message}", n.severity, n.channel)
            out.extend_from([n])
    return out


def _is_feature_model(name: str) -> bool:
    """Feature models (and their cross-fitted vote) use no validation subjects."""
    from hypnoscope.models import MODEL_REGISTRY

    return MODEL_REGISTRY[name][0].split(":")[0] in (
        "hypnoscope.models.feature_classifiers", "hypnoscope.models.vote")


# -- handlers ---------------------------------------------------------------------------

def _train(args) -> int:
    from hypnoscope.evaluation.splits import validation_split
    from hypnoscope.models import MODEL_REGISTRY, make_model

    if args.model not in MODEL_REGISTRY:
        raise CLIError(f"unknown model {args.model!r}; available: "
                       f"{', '.join(MODEL_REGISTRY)} (see 'hypnoscope models')")
    if args.classes is None:
        args.classes = 3 if args.model.endswith("-hier") else 5
    if not 0 <= args.val_fraction < 1:
        raise CLIError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    from hypnoscope.utils import check_output_dir, check_output_file

    # the output paths are checked before minutes of loading and training, not at save
    check_output_file(args.out, "--out")
    if not _is_feature_model(args.model):
        check_output_dir(args.checkpoint_dir or f"{args.out}.ckpt", "--checkpoint-dir",
                         create=False)
    args.preprocessing = _lowpass_preprocessing(args)
    model_options = _pretraining_options(args)
    nights = _load_nights(args)
    if args.strict:
        from hypnoscope.notices import raise_if_strict

        raise_if_strict(_night_notices(nights), True,
                        f"training data {args.features or args.data}")
    options: dict[str, Any] = {"n_classes": args.classes, "seed": args.seed}
    if _is_feature_model(args.model):
        train_nights, val_nights = nights, None
    else:
        options.update({
            "seq_len": args.seq_len, "preset": args.preset, "epochs": args.epochs,
            "checkpoint_dir": args.checkpoint_dir or f"{args.out}.ckpt",
            "resume": args.resume,
        })
        options = {k: v for k, v in options.items() if v is not None}
        options.update(model_options)
        train_nights, val_nights = validation_split(nights, args.val_fraction, args.seed)
    model = make_model(args.model, **options)
    model.fit(train_nights, val_nights=val_nights)
    model.metadata["cli"] = {"source": args.features or args.data,
                             "input": "features" if args.features else "data",
                             "seed": args.seed, "n_classes": args.classes,
                             "n_val_nights": len(val_nights or [])}
    if not _is_feature_model(args.model):
        from hypnoscope.training.loop import distributed_rank

        rank, world = distributed_rank()
        if world > 1:  # torchrun: rank 0 saves and reports, the others are done
            import torch.distributed as dist

            dist.barrier()
            if rank != 0:
                dist.destroy_process_group()
                return 0
            model.metadata["cli"]["distributed"] = {"world_size": world}
    out = model.save(args.out)
    n_ep = sum(int(n.scored.sum()) for n in train_nights)
    print(f"trained {args.model} ({args.classes} classes) on {len(train_nights)} nights "
          f"/ {len({n.subject_id for n in train_nights})} subjects / {n_ep} scored epochs"
          + (f" (validation: {len(val_nights)} nights)" if val_nights else "")
          + f"; saved to {out}")
    if not _is_feature_model(args.model):
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


def _evaluate(args) -> int:
    import numpy as np

    from hypnoscope.evaluation.metrics import evaluate
    from hypnoscope.models import load_model
    from hypnoscope.stages import stage_names, to_3class
    from hypnoscope.utils import progress

    model = load_model(args.model)
    # signal nights go through the continuous preprocessing the model was trained with
    args.preprocessing = ((getattr(model, "metadata", {}) or {}).get("training_data")
                          or {}).get("preprocessing")
    nights = _load_nights(args)
    n_classes = int(getattr(model, "n_classes", 5))
    y_true, y_pred = [], []
    for n in progress(nights, desc="evaluate", unit="night"):
        y_pred.append(np.asarray(model.predict(n)))
        y_true.append(to_3class(n.y) if n_classes == 3 else n.y)
    metrics = evaluate(np.concatenate(y_true), np.concatenate(y_pred), n_classes=n_classes)
    if args.json:
        keys = ("accuracy", "macro_f1", "kappa", "per_class_f1", "confusion_matrix",
                "n_epochs")
        from hypnoscope.evaluation.sleepstats import json_safe

        # strict JSON: an undefined metric (e.g. F1 of a class absent from both the
        # labels and the predictions) is null, not NaN
        print(json.dumps(json_safe({k: metrics[k] for k in keys if k in metrics}), indent=2,
                         allow_nan=False))
        return 0
    names = stage_names(n_classes)
    print(f"model {getattr(model, 'name', '?')} on {len(nights)} nights, "
          f"{metrics['n_epochs']} scored epochs")
    print(f"accuracy  {metrics['accuracy']:.4f}")
    print(f"macro-F1  {metrics['macro_f1']:.4f}")
    print(f"kappa     {metrics['kappa']:.4f}")
    print("per-class F1  " + "  ".join(f"{k} {v:.3f}" for k, v in
                                       metrics["per_class_f1"].items()))
    print("confusion matrix (rows = reference, columns = predicted)")
    width = max(7, max(len(str(v)) for row in metrics["confusion_matrix"] for v in row) + 1)
    print(" " * 6 + "".join(f"{s:>{width}}" for s in names))
    for s, row in zip(names, metrics["confusion_matrix"], strict=True):
        print(f"{s:<6}" + "".join(f"{v:>{width}}" for v in row))
    return 0


def _card_summary(card: dict[str, Any]) -> str:
    for key in ("summary", "description"):
        if isinstance(card.get(key), str):
            return card[key]
    return f"{card.get('model', '?')} model"


def _models(args) -> int:
    from hypnoscope.models import MODEL_REGISTRY
    from hypnoscope.models.storage import shipped_models

    cards = list(shipped_models().values())
    if args.json:
        print(json.dumps({"models": {k: v[1] for k, v in MODEL_REGISTRY.items()},
                          "pretrained": [{"name": c["name"], "summary": _card_summary(c)}
                                         for c in cards]}, indent=2))
        return 0
    width = max(len(k) for k in MODEL_REGISTRY) + 2
    print("Models (hypnoscope train --model NAME):")
    for name, (_, desc) in MODEL_REGISTRY.items():
        print(f"  {name:<{width}}{desc}")
    if cards:
        print("Pretrained models (hypnoscope stage --model NAME):")
        w2 = max(len(str(c["name"])) for c in cards) + 2
        for c in cards:
            print(f"  {str(c['name']):<{w2}}{_card_summary(c)}")
    return 0


# -- options of the pre-training models (MSMAE-CNN, MC2SleepNet) ----------------------------

#: Models of the MSMAE-CNN paper: the Kaiser 10-Hz low-pass is their default preprocessing.
MSMAE_PAPER_MODELS = ("msmae-cnn", "msmae-cnn-rf", "cnn")
#: Options each pre-training model takes (the others refuse them by name).
_MODEL_OPTIONS = {
    "msmae-cnn": ("mask_ratio", "scales", "pretrain_epochs", "freeze_encoder"),
    "msmae-cnn-rf": ("mask_ratio", "scales", "pretrain_epochs", "freeze_encoder"),
    "mc2sleepnet": ("mask_ratio", "pretrain_epochs", "init_from", "finetune", "channels"),
}


def _add_pretraining_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("MC2SleepNet (mc2sleepnet)")
    m.add_argument("--init-from", default=None, metavar="MODEL_PATH",
                   help="start from the weights of another trained mc2sleepnet (e.g. "
                        "pre-trained on a large cohort); with --pretrain-epochs 0 only the "
                        "sequence level is fine-tuned")
    m.add_argument("--pretrain-only", action="store_true",
                   help="keep the pre-trained model, no fine-tuning (the paper's rows "
                        "marked with a Gamma)")
    m.add_argument("--channels", type=int, default=None, metavar="N",
                   help="channels fed to the network, EEG first (default 1: one EEG)")
    g = p.add_argument_group("MSMAE-CNN paper models (msmae-cnn, msmae-cnn-rf, cnn)")
    g.add_argument("--mask-ratio", type=float, default=None, metavar="R",
                   help="fraction masked in pre-training: MSMAE-CNN's patches, "
                        "MC2SleepNet's epoch tokens (default 0.5)")
    g.add_argument("--scales", type=float, nargs="+", default=None, metavar="SEC",
                   help="patch lengths in seconds (default 0.5 1 2 5)")
    g.add_argument("--pretrain-epochs", type=int, default=None, metavar="N",
                   help="self-supervised pre-training epochs (preset default; 0 = none)")
    g.add_argument("--freeze-encoder", action="store_true",
                   help="fine-tune the CNN decoder only (default: encoder too)")
    g.add_argument("--lowpass", type=float, default=None, metavar="HZ",
                   help="Kaiser-window FIR low-pass cut-off (60 dB) applied to EEG, EOG and "
                        "EMG of --data recordings instead of the default band-pass; default "
                        "10 Hz (the paper) for these models; 0 = the default preprocessing")


def _lowpass_preprocessing(args) -> dict[str, Any] | None:
    """Continuous preprocessing of ``--data`` nights from ``--lowpass`` (None: the
    loader's default)."""
    from hypnoscope.signal.preprocessing import PRESETS

    hz = args.lowpass
    if hz is None and args.model in MSMAE_PAPER_MODELS:
        hz = PRESETS["msmae-cnn"]["lowpass"]["cutoff"]
    if hz is None or hz == 0:
        return None
    if hz < 0:
        raise CLIError(f"--lowpass must be a positive cut-off in Hz (or 0), got {hz:g}")
    if args.features:
        raise CLIError("--lowpass filters raw recordings (--data), not feature files")
    config = dict(PRESETS["msmae-cnn"])
    config["lowpass"] = {**config["lowpass"], "cutoff": float(hz)}
    return config


def _pretraining_options(args) -> dict[str, Any]:
    """Model options from the pre-training arguments that were given (MSMAE-CNN,
    MC2SleepNet); an option the model does not take is refused by name."""
    opts = {"mask_ratio": args.mask_ratio, "pretrain_epochs": args.pretrain_epochs,
            "scales": tuple(args.scales) if args.scales else None,
            "freeze_encoder": True if args.freeze_encoder else None,
            "init_from": args.init_from, "finetune": False if args.pretrain_only else None,
            "channels": args.channels}
    opts = {k: v for k, v in opts.items() if v is not None}
    flag = {"finetune": "pretrain_only"}
    bad = [k for k in opts if k not in _MODEL_OPTIONS.get(args.model, ())]
    if bad:
        flags = ", ".join("--" + flag.get(k, k).replace("_", "-") for k in bad)
        takers = sorted(m for m, o in _MODEL_OPTIONS.items() if set(bad) <= set(o))
        raise CLIError(f"{flags} do(es) not apply to {args.model}"
                       + (f"; models that take it: {', '.join(takers)}" if takers else ""))
    if "init_from" in opts:
        from pathlib import Path

        if not Path(opts["init_from"]).is_file():
            raise CLIError(f"--init-from {opts['init_from']}: no such model file")
    return opts
