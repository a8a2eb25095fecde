"""``hypnoscope train``, ``hypnoscope evaluate`` and ``hypnoscope models``.

- ``train --model NAME (--features DIR | --data DIR) --out MODEL_PATH`` trains any
  registered model on a directory of per-night feature ``.npz`` files or of raw Sleep-EDF
  style PSG + hypnogram EDF pairs and saves it.
- ``evaluate --model MODEL (--features DIR | --data DIR) [--json]`` (a model file or a
  shipped name) prints accuracy, macro-F1, Cohen's kappa, per-class F1 and the confusion
  matrix, with a warning where the nights overlap the model's training data.
- ``models`` lists every model name ``train`` accepts, the shipped pretrained models and
  the stagers (``yasa``, ``consensus`` and the plug-ins installed).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from hypnoscope.cli import CLIError
from hypnoscope.cli.stats import add_label_map_arg, confusion_matrix_lines


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
                   help="output model file (checked for writing before training starts); "
                        "with --data also MODEL_PATH.recordings.csv, the per-recording "
                        "summary, written with the model once training succeeds")
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
    deep.add_argument("--mode", choices=("many-to-many", "many-to-one"), default=None,
                      help="'many-to-many': every epoch of a window is a target, windows "
                           "averaged at inference; 'many-to-one': each sequence predicts "
                           "its last epoch (the multimodal hierarchical seed); default the "
                           "model's (many-to-many for the sequence models)")
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
    _add_model_options(p)
    p.set_defaults(func=_train)

    e = subparsers.add_parser(
        "evaluate", help="score a trained model against expert labels",
        description="Print accuracy, macro-F1, Cohen's kappa, per-class F1 and the "
                    "confusion matrix of a trained model on labelled nights.")
    e.add_argument("--model", required=True, metavar="MODEL",
                   help="trained model file, or a shipped model name (e.g. default; list: "
                        "'hypnoscope models')")
    _add_input_args(e)
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(func=_evaluate)

    m = subparsers.add_parser("models", help="list the model names and pretrained models",
                              description="List every model name 'train' accepts.")
    m.add_argument("--json", action="store_true", help="print as JSON")
    m.set_defaults(func=_models)


# -- helpers ----------------------------------------------------------------------------

def _load_nights(args, summary_csv: str | os.PathLike | None = None) -> list:
    """The nights of ``--features`` or ``--data`` (``summary_csv``: where the per-recording
    summary of ``--data`` is written, see :func:`hypnoscope.signal.nights.load_psg_dir`)."""
    from hypnoscope import datasets
    from hypnoscope.signal.nights import load_psg_dir
    from hypnoscope.stages import stage_codes_label_map

    if args.features:
        return datasets.load_feature_dir(args.features,
                                         subject_pattern=args.subject_pattern or r"^(\d+)")
    kw: dict[str, Any] = {}
    if args.subject_pattern:
        kw["subject_pattern"] = args.subject_pattern
    for role in ("eeg", "eog", "emg"):
        if getattr(args, role):
            kw[role] = getattr(args, role)
    label_map = stage_codes_label_map(getattr(args, "stage_codes", None),
                                      getattr(args, "label_map", None))
    if label_map:
        kw["label_map"] = label_map
    if getattr(args, "preprocessing", None) is not None:
        kw["preprocessing"] = args.preprocessing
    jobs, scheduler = getattr(args, "jobs", 1), getattr(args, "scheduler", None)
    if jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {jobs}")
    if scheduler is not None and jobs != 1:
        raise CLIError("give --jobs (local processes) or --scheduler (a Dask cluster), "
                       "not both")
    if summary_csv is not None:
        kw["summary_csv"] = summary_csv
    nights = load_psg_dir(args.data, jobs=jobs, scheduler=scheduler, **kw)
    if not nights:
        raise FileNotFoundError(f"no PSG + hypnogram pairs found in {args.data}")
    return nights


def _load_training_nights(args) -> tuple[list, str | None]:
    """The nights of ``train`` and, with ``--data``, the text of their per-recording summary
    CSV. The summary is written into a temporary folder here and beside the model only by
    :func:`_save_model`, so that a refused or failed training leaves neither."""
    if not args.data:
        return _load_nights(args), None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hypnoscope-train-") as tmp:
        summary = Path(tmp) / "recordings.csv"
        nights = _load_nights(args, summary)
        return nights, summary.read_text(encoding="utf-8")


def _save_model(model, out: str, summary: str | None) -> Path:
    """Save the model to ``out`` and then its recordings summary to
    ``OUT.recordings.csv`` (``summary`` None, as for ``--features``: an older summary
    there, of other training data, is removed). Interrupts wait until both are done, so
    the two appear together."""
    from hypnoscope.utils.files import deferred_interrupts, write_text_atomic

    summary_path = Path(f"{out}.recordings.csv")
    with deferred_interrupts():
        path = model.save(out)
        if summary is None:
            summary_path.unlink(missing_ok=True)
        else:
            write_text_atomic(summary_path, summary)
    return path


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
    from hypnoscope.models import is_deep_model

    return not is_deep_model(name)


# -- handlers ---------------------------------------------------------------------------

def _train(args) -> int:
    from hypnoscope.evaluation.splits import validation_split
    from hypnoscope.models import MODEL_REGISTRY, make_model, model_factory

    if args.model not in MODEL_REGISTRY:
        raise CLIError(f"unknown model {args.model!r}; available: "
                       f"{', '.join(MODEL_REGISTRY)} (see 'hypnoscope models')")
    model_factory(args.model)  # a deep model without PyTorch stops here, in one line
    if args.classes is None:
        args.classes = 3 if args.model.endswith("-hier") else 5
    if not 0 <= args.val_fraction < 1:
        raise CLIError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    from hypnoscope.utils.files import check_output_dir, check_output_file

    deep = not _is_feature_model(args.model)
    # the output paths are checked before minutes of loading and training, not at save
    check_output_file(args.out, "--out")
    if deep:
        check_output_dir(args.checkpoint_dir or f"{args.out}.ckpt", "--checkpoint-dir",
                         create=False)
    args.preprocessing = _training_preprocessing(args)
    model_options = _model_options(args)
    nights, summary = _load_training_nights(args)
    if args.strict:
        from hypnoscope.notices import raise_if_strict

        raise_if_strict(_night_notices(nights), True,
                        f"training data {args.features or args.data}")
    options: dict[str, Any] = {"n_classes": args.classes, "seed": args.seed}
    if not deep:
        train_nights, val_nights = nights, None
    else:
        options.update({
            "seq_len": args.seq_len, "mode": args.mode, "preset": args.preset,
            "epochs": args.epochs,
            "checkpoint_dir": args.checkpoint_dir or f"{args.out}.ckpt",
            "resume": args.resume,
        })
        options = {k: v for k, v in options.items() if v is not None}
        train_nights, val_nights = validation_split(nights, args.val_fraction, args.seed)
    model = make_model(args.model, **{**options, **model_options})
    model.fit(train_nights, val_nights=val_nights)
    model.metadata["cli"] = {"source": args.features or args.data,
                             "input": "features" if args.features else "data",
                             "seed": args.seed, "n_classes": args.classes,
                             "n_val_nights": len(val_nights or [])}
    if deep:  # under torchrun: rank 0 saves and reports, the others are done
        from hypnoscope.training.distributed import end_of_training

        saves, world = end_of_training()
        if not saves:
            return 0
        if world > 1:
            model.metadata["cli"]["distributed"] = {"world_size": world}
    out = _save_model(model, args.out, summary)
    n_ep = sum(int(n.scored.sum()) for n in train_nights)
    print(f"trained {args.model} ({args.classes} classes) on {len(train_nights)} nights "
          f"/ {len({n.subject_id for n in train_nights})} subjects / {n_ep} scored epochs"
          + (f" (validation: {len(val_nights)} nights)" if val_nights else "")
          + f"; saved to {out}")
    if deep:
        from hypnoscope.training.distributed import shutdown_distributed

        shutdown_distributed()
    return 0


def _evaluate(args) -> int:
    import numpy as np

    from hypnoscope.datasets import check_training_input, training_overlap
    from hypnoscope.evaluation.metrics import evaluate
    from hypnoscope.models.adapt import refuse_adaptation_nights
    from hypnoscope.models.storage import load_staging_model
    from hypnoscope.notices import Notices
    from hypnoscope.stages import stage_names, to_3class
    from hypnoscope.utils.runtime import progress

    model, _ = load_staging_model(args.model)  # a shipped name or a model file, as `stage`
    trained = (getattr(model, "metadata", {}) or {}).get("training_data") or {}
    # signal nights go through the continuous preprocessing the model was trained with
    args.preprocessing = trained.get("preprocessing")
    nights = _load_nights(args)
    check_training_input(nights, trained)
    refuse_adaptation_nights(model, nights)  # an adapted model: not its own nights
    n_classes = int(getattr(model, "n_classes", 5))
    y_true, y_pred = [], []
    for n in progress(nights, desc="evaluate", unit="night"):
        y_pred.append(np.asarray(model.predict(n)))
        y_true.append(to_3class(n.y) if n_classes == 3 else n.y)
    metrics = evaluate(np.concatenate(y_true), np.concatenate(y_pred), n_classes=n_classes)
    overlap = training_overlap(nights, trained)
    if overlap is not None:  # logged once, as every notice (stderr)
        Notices().add(overlap.code, overlap.message)
    if args.json:
        keys = ("accuracy", "macro_f1", "kappa", "macro_precision", "macro_recall",
                "per_class_f1", "precision", "recall", "support", "per_class",
                "confusion_matrix", "n_epochs")
        from hypnoscope.evaluation.sleepstats import json_safe

        # strict JSON: an undefined metric (e.g. F1 of a class absent from both the
        # labels and the predictions) is null, not NaN
        out = {k: metrics[k] for k in keys if k in metrics}
        if overlap is not None:
            out["notices"] = [overlap.to_dict()]
        print(json.dumps(json_safe(out), indent=2, allow_nan=False))
        return 0
    names = stage_names(n_classes)
    print(f"model {getattr(model, 'name', '?')} on {len(nights)} nights, "
          f"{metrics['n_epochs']} scored epochs")
    print(f"accuracy  {metrics['accuracy']:.4f}")
    print(f"macro-F1  {metrics['macro_f1']:.4f}")
    print(f"kappa     {metrics['kappa']:.4f}")
    print("per-class F1  " + "  ".join(f"{k} {v:.3f}" for k, v in
                                       metrics["per_class_f1"].items()))
    print("\n".join(classification_report_lines(metrics)))
    print("\n".join(confusion_matrix_lines(metrics["confusion_matrix"], names)))
    return 0


def classification_report_lines(metrics: dict[str, Any]) -> list[str]:
    """Text of the per-stage precision, recall, F1 and support of an
    :func:`hypnoscope.evaluation.metrics.evaluate` result, with a macro-average row
    (``n/a``: undefined, e.g. the precision of a stage never predicted)."""
    def cell(v: float) -> str:
        return f"{'n/a' if v != v else f'{v:.3f}':>10}"

    per = metrics["per_class"]
    head = ("precision", "recall", "F1", "support")
    lines = ["classification report", f"{'stage':<10}" + "".join(f"{h:>10}" for h in head)]
    for name, m in per.items():
        lines.append(f"{name:<10}" + cell(m["precision"]) + cell(m["recall"]) + cell(m["f1"])
                     + f"{m['support']:>10}")
    lines.append(f"{'macro avg':<10}" + cell(metrics["macro_precision"])
                 + cell(metrics["macro_recall"]) + cell(metrics["macro_f1"])
                 + f"{sum(m['support'] for m in per.values()):>10}")
    return lines


def _card_summary(card: dict[str, Any]) -> str:
    for key in ("summary", "description"):
        if isinstance(card.get(key), str):
            return card[key]
    return f"{card.get('model', '?')} model"


def _models(args) -> int:
    from hypnoscope.models import MODEL_REGISTRY
    from hypnoscope.models.plugins import stager_descriptions
    from hypnoscope.models.storage import shipped_models

    cards = list(shipped_models().values())
    stagers = stager_descriptions()
    if args.json:
        print(json.dumps({"models": {k: v[1] for k, v in MODEL_REGISTRY.items()},
                          "pretrained": [{"name": c["name"], "summary": _card_summary(c)}
                                         for c in cards], "stagers": stagers}, indent=2))
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
    print("Stagers (hypnoscope stage --model NAME; plug-ins: entry points "
          "'hypnoscope.stagers', docs/plugins.md):")
    w3 = max(len(k) for k in stagers) + 2
    for name, desc in stagers.items():
        print(f"  {name:<{w3}}{desc}")
    return 0


# -- the options each model declares (hypnoscope.models.MODEL_OPTIONS) -------------------

def _declared_options() -> dict[str, tuple[Any, list[str]]]:
    """``{dest: (option, names of the models that take it)}`` over every model."""
    from hypnoscope.models import MODEL_OPTIONS

    out: dict[str, tuple[Any, list[str]]] = {}
    for model, declared in MODEL_OPTIONS.items():
        for opt in declared:
            out.setdefault(opt.dest, (opt, []))[1].append(model)
    return out


def _add_model_options(p: argparse.ArgumentParser) -> None:
    from hypnoscope.models import MODEL_PREPROCESSING
    from hypnoscope.signal.preprocessing import PRESETS

    g = p.add_argument_group("model options (the models that take each in brackets)")
    for opt, models in _declared_options().values():
        kw: dict[str, Any] = {"help": f"{opt.help} [{', '.join(models)}]"}
        if opt.type is None:
            kw["action"] = "store_true"
        else:
            kw.update(type=opt.type, default=None, nargs=opt.nargs, metavar=opt.metavar)
        g.add_argument(opt.cli_flag, dest=opt.dest, **kw)
    lowpassed = [m for m, preset in MODEL_PREPROCESSING.items() if PRESETS[preset]["lowpass"]]
    p.add_argument("--lowpass", type=float, default=None, metavar="HZ",
                   help="Kaiser-window FIR low-pass cut-off (60 dB) applied to EEG, EOG and "
                        "EMG of --data recordings instead of the default band-pass; default "
                        "10 Hz (the MSMAE-CNN paper) for "
                        f"{', '.join(lowpassed)}; 0 = the default preprocessing")
    p.add_argument("--highpass", type=float, default=None, metavar="HZ",
                   help="Kaiser-window FIR high-pass cut-off applied after --lowpass, removing "
                        "the baseline wander (the MSMAE-CNN paper); default 0.5 Hz; 0 = off")
    p.add_argument("--bandpass", choices=("default", "none"), default=None,
                   help="band-pass of --data recordings: 'default' (EEG 0.3-35 Hz, EOG "
                        "0.3-15 Hz, EMG 10-45 Hz) or 'none'; default: the model's own (none "
                        "for mc2sleepnet, as its paper; the default band-pass for the "
                        "models not low-passed)")


def _lowpass_preprocessing(args) -> dict[str, Any] | None:
    """Continuous preprocessing of ``--data`` nights from ``--lowpass`` and the model's
    preprocessing (None: the loader's default)."""
    from hypnoscope.models import MODEL_PREPROCESSING
    from hypnoscope.signal.preprocessing import PRESETS

    preset = MODEL_PREPROCESSING.get(args.model, "msmae-cnn")
    hz = args.lowpass
    if hz is None and args.model in MODEL_PREPROCESSING:
        hz = (PRESETS[preset]["lowpass"] or {}).get("cutoff")
    if hz is None or hz == 0:
        return None
    if hz < 0:
        raise CLIError(f"--lowpass must be a positive cut-off in Hz (or 0), got {hz:g}")
    if args.features:
        raise CLIError("--lowpass filters raw recordings (--data), not feature files")
    config = dict(PRESETS[preset])
    config["lowpass"] = {**(config["lowpass"] or {}), "cutoff": float(hz)}
    highpass = getattr(args, "highpass", None)
    if highpass is not None:
        if highpass < 0:
            raise CLIError(f"--highpass must be a positive cut-off in Hz (or 0), got "
                           f"{highpass:g}")
        config["lowpass"]["highpass"] = float(highpass) if highpass > 0 else None
    return config


def _training_preprocessing(args) -> dict[str, Any] | None:
    """Continuous preprocessing of ``--data`` nights: the low-pass of
    :func:`_lowpass_preprocessing`, else the model's preset, with ``--bandpass`` over
    either (None: the loader's default)."""
    from hypnoscope.models import MODEL_PREPROCESSING
    from hypnoscope.signal.preprocessing import PRESETS

    config = _lowpass_preprocessing(args)
    bandpass = getattr(args, "bandpass", None)
    if config is None:
        preset = None if args.lowpass == 0 else MODEL_PREPROCESSING.get(args.model)
        if preset is None:
            if bandpass is None:
                return None
            preset = "default"
        config = dict(PRESETS[preset])
    if bandpass is not None:
        if args.features:
            raise CLIError("--bandpass filters raw recordings (--data), not feature files")
        config = {**config, "bandpass": "default" if bandpass == "default" else None}
    return config


def _model_options(args) -> dict[str, Any]:
    """The options of the model, ``{factory keyword: value}``: those given on the command
    line and those it declares with a default; an option the model does not declare is
    refused by name."""
    from pathlib import Path

    from hypnoscope.models import MODEL_OPTIONS

    given = [opt for opt, _ in _declared_options().values()
             if getattr(args, opt.dest) not in (None, False)]
    own = MODEL_OPTIONS.get(args.model, ())
    bad = [opt for opt in given if opt.name not in {o.name for o in own}]
    if bad:
        takers = sorted(m for m, declared in MODEL_OPTIONS.items()
                        if {o.name for o in bad} <= {o.name for o in declared})
        raise CLIError(f"{', '.join(o.cli_flag for o in bad)} do(es) not apply to "
                       f"{args.model}"
                       + (f"; models that take it: {', '.join(takers)}" if takers else ""))
    out = {opt.name: opt.value(getattr(args, opt.dest)) for opt in own}
    for opt in own:
        if opt.model_file and out[opt.name] is not None and not Path(out[opt.name]).is_file():
            raise CLIError(f"{opt.cli_flag} {out[opt.name]}: no such model file")
    return {name: value for name, value in out.items() if value is not None}
