"""``hypnoscope adapt``: adapt a shipped (or trained) model to a lab's reviewed nights.

``adapt --model default --data REVIEWED/ --out lab.joblib`` reads every recording of
REVIEWED/ with its reviewed scoring (``RECORDING.reviewed.tsv``, written by ``hypnoscope
review``) or its hypnogram (paired as ``hypnoscope train --data`` pairs them), adapts
the model (:func:`hypnoscope.models.adapt.adapt_model`) and writes the adapted model
and its card (``lab.json``: base model, method, options, the nights adapted on). The
adapted model stages like any model file (``hypnoscope stage --model lab.joblib``) and
``hypnoscope evaluate`` refuses the nights it was adapted on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hypnoscope.cli import CLIError


def register(subparsers) -> None:
    """Add the ``adapt`` sub-command."""
    p = subparsers.add_parser(
        "adapt", help="adapt a model to a lab's reviewed nights",
        description="Adapt a shipped or trained staging model to a lab's reviewed nights "
                    "and save it with its model card.")
    p.add_argument("--model", default="default", metavar="MODEL",
                   help="shipped model name or model file to adapt (default: default)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR",
                     help="folder of recordings with their reviewed scorings "
                          "(RECORDING.reviewed.tsv from 'hypnoscope review') or hypnograms "
                          "(as 'hypnoscope train --data' pairs them)")
    src.add_argument("--features", metavar="DIR",
                     help="folder of per-night band-power .npz files with labels (the "
                          "layout of 'hypnoscope train --features')")
    p.add_argument("--all-epochs", action="store_true",
                   help="of a reviewed scoring, also adapt on the epochs the review left "
                        "automatic (as accepted); default: only the epochs a person scored")
    p.add_argument("--out", required=True, metavar="MODEL_PATH",
                   help="adapted model file (its card is written beside it as .json)")
    p.add_argument("--method", default=None, metavar="METHOD",
                   help="boost (continue boosting the LightGBM trees on the lab's epochs), "
                        "refit (train again on the training nights plus the lab's; needs "
                        "--base-features) or recalibrate (per-stage bias and temperature); "
                        "default: the one benchmarks/adapt chose")
    p.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                   help="a method option, e.g. rounds=200 (boost), weight=10 (refit)")
    p.add_argument("--base-features", metavar="DIR",
                   help="the model's training nights as feature files (refit only)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="LightGBM threads (default 1)")
    p.set_defaults(func=_adapt)


def _adapt(args: argparse.Namespace) -> int:
    from hypnoscope.datasets import load_feature_dir
    from hypnoscope.models.adapt import (
        DEFAULT_METHOD,
        METHODS,
        adapt_model,
        adapted_card,
        load_reviewed_nights,
    )
    from hypnoscope.models.storage import load_staging_model, make_portable
    from hypnoscope.utils.files import check_output_file, write_json_atomic
    from hypnoscope.utils.runtime import parse_options

    method = args.method or DEFAULT_METHOD
    if method not in METHODS:
        raise CLIError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    try:
        options = parse_options(args.option)
    except ValueError as err:
        raise CLIError(f"--{err}") from None
    out = check_output_file(args.out, "--out")
    model, card = load_staging_model(args.model)
    if getattr(model, "input_kind", None) == "recording":
        raise CLIError(f"--model {args.model}: a stager that reads recordings itself; "
                       "adapt a hypnoscope model (e.g. default) instead")
    if args.features:
        nights = load_feature_dir(args.features)
    else:
        nights = load_reviewed_nights(args.data, model, all_epochs=args.all_epochs)
    base_nights = load_feature_dir(args.base_features) if args.base_features else None
    name = Path(out).stem
    adapted = adapt_model(model, nights, method, base_name=str(card.get("name", args.model)),
                          base_nights=base_nights, options=options, seed=args.seed,
                          n_jobs=args.jobs, name=name)
    make_portable(adapted)
    path = adapted.save(out)
    write_json_atomic(Path(out).with_suffix(".json"), adapted_card(card, adapted, name))
    ad = adapted.adaptation
    print(f"adapted {ad['base_model']} by {method} on {len(ad['night_ids'])} night(s) of "
          f"{len(ad['subjects'])} subject(s), {ad['n_scored_epochs']} scored epochs; saved "
          f"to {path} (card {Path(out).with_suffix('.json')})")
    return 0
