"""Staging models. One file per model; every CLI model name is registered here.

:data:`MODEL_REGISTRY` maps a name to ``(factory "module:callable", one-line description)``;
:data:`MODEL_OPTIONS` declares the options each model takes from ``hypnoscope train``
(the command line builds its arguments from them), and :data:`MODEL_PREPROCESSING` the
continuous preprocessing of its raw training recordings when it is not the default.
Adding a model means adding it here, not to the command line.
``make_model(name, **options)`` builds a :class:`~hypnoscope.models.base.StagingModel`.

The feature models need no PyTorch; the deep models do (``pip install
'hypnoscope[deep]'``): without it, :func:`make_model` of one, or loading a deep model
file, raises :class:`~hypnoscope.models.base.MissingExtraError` naming the extra.
"""

from __future__ import annotations

import importlib
from typing import Any

from hypnoscope.models import onnx_model as _onnx_model  # noqa: F401 - reads .onnx files
from hypnoscope.models.base import (
    DEEP_EXTRA,
    MissingExtraError,
    ModelOption,
    StagingModel,
    is_torch_missing,
    load_model,
)

#: name -> (factory as "module:callable", description). The factory is called as
#: ``factory(name=name, n_classes=..., **options)``.
MODEL_REGISTRY: dict[str, tuple[str, str]] = {
    "svm": ("hypnoscope.models.feature_classifiers:make_feature_model",
            "RBF support-vector machine on per-epoch features (MSMAE-CNN paper baseline)"),
    "rf": ("hypnoscope.models.feature_classifiers:make_feature_model",
           "Random Forest on per-epoch features (MSMAE-CNN paper baseline)"),
    "lightgbm": ("hypnoscope.models.feature_classifiers:make_feature_model",
                 "LightGBM gradient boosting on per-epoch features"),
    "svm-context": ("hypnoscope.models.feature_classifiers:make_feature_model",
                    "RBF SVM on features plus temporal context (rolling windows, "
                    "per-night normalisation)"),
    "rf-context": ("hypnoscope.models.feature_classifiers:make_feature_model",
                   "Random Forest on features plus temporal context"),
    "lightgbm-context": ("hypnoscope.models.feature_classifiers:make_feature_model",
                         "LightGBM on features plus temporal context (YASA-style)"),
    "lightgbm-vote": ("hypnoscope.models.vote:make_vote",
                      "Soft vote of three lightgbm-context variants (robust and quantile "
                      "per-night normalisation, band-power augmentation); weights, class "
                      "re-weighting and HMM chosen on cross-fitted predictions"),
    "length-gated": ("hypnoscope.models.length_gate:make_length_gated",
                     "Two feature models of one input: a whole-night model for recordings "
                     "of 4 h or more, a stretch-robust one for shorter recordings"),
    "ssnet": ("hypnoscope.models.ssnet:make_ssnet",
              "CNN + TCN + attention sequence model, direct 5-class (multimodal "
              "hierarchical seed); MLP front-end on feature input"),
    "ssnet-hier": ("hypnoscope.models.ssnet:make_ssnet",
                   "Hierarchical 3-class SSNet: Wake vs Sleep, then REM vs NREM on sleep "
                   "epochs"),
    "seq-transformer": ("hypnoscope.models.seq_transformer:make_seq_transformer",
                        "Transformer encoder over sequences of per-epoch vectors (MLP over "
                        "features, or a CNN over raw epochs); MC2SleepNet's sequence level "
                        "on one view"),
    "msmae-cnn": ("hypnoscope.models.msmae_cnn:make_msmae_cnn",
                  "Multi-scale masked-autoencoder encoder per modality (self-supervised "
                  "pre-training) + CNN decoder, on raw epochs (MSMAE-CNN paper)"),
    "msmae-cnn-rf": ("hypnoscope.models.msmae_cnn:make_msmae_cnn_rf",
                     "MSMAE-CNN soft-voted with a Random Forest on the paper's EEG "
                     "features, weight chosen on validation subjects"),
    "mc2sleepnet": ("hypnoscope.models.mc2sleepnet:make_mc2sleepnet",
                    "Raw-signal CNN + spectrogram Transformer with InfoNCE pre-training and "
                    "cross-masked sequence Transformers (MC2SleepNet paper)"),
    "cnn": ("hypnoscope.models.cnn:make_cnn",
            "Plain CNN on raw epochs (Chambon et al. 2018; MSMAE-CNN paper baseline)"),
}


#: Modules of the factories whose models need no PyTorch (feature models and their vote:
#: they train on every night, without validation subjects).
FEATURE_MODEL_MODULES = ("hypnoscope.models.feature_classifiers", "hypnoscope.models.vote",
                         "hypnoscope.models.length_gate")

_MASK_RATIO = ModelOption(
    "mask_ratio", "fraction masked in pre-training: MSMAE-CNN's patches, MC2SleepNet's "
    "epoch tokens (default 0.5)", float, metavar="R")
_PRETRAIN_EPOCHS = ModelOption(
    "pretrain_epochs", "self-supervised pre-training epochs (preset default; 0 = none)",
    int, metavar="N")
_MSMAE_OPTIONS = (
    _MASK_RATIO,
    _PRETRAIN_EPOCHS,
    ModelOption("scales", "patch lengths in seconds (default 0.5 1 2 5)", float,
                nargs="+", metavar="SEC"),
    ModelOption("freeze_encoder", "fine-tune the CNN decoder only (default: encoder too)"),
)

def _shrink_value(text: str) -> float | str:
    """``--shrink``: ``auto`` or a number of epochs >= 0."""
    if text == "auto":
        return text
    value = float(text)
    if value < 0:
        raise ValueError(f"shrink must be 'auto' or >= 0, got {text}")
    return value


def _crops_value(text: str) -> dict[str, int]:
    """``--crops N``: N random training stretches per night."""
    n = int(text)
    if n < 1:
        raise ValueError(f"crops must be >= 1, got {text}")
    return {"per_night": n}


#: Options of the context feature models for recordings shorter than a night (see
#: :class:`~hypnoscope.models.feature_classifiers.FeatureStagingModel`).
_STRETCH_OPTIONS = (
    ModelOption("crops", "train also on N random stretches of every training night, 20 min "
                "to the whole night, each as a recording of its own", _crops_value,
                metavar="N"),
    ModelOption("shrink", "shrink each recording's normalisation statistics toward the "
                "training population's with constant K epochs ('auto': estimated on the "
                "training nights)", _shrink_value, metavar="K|auto"),
    ModelOption("context", "add the recording's length as a feature", flag="--recording-length",
                switch={"length": True}),
)

#: name -> the options the model takes from ``hypnoscope train`` besides the classes,
#: the seed and the training settings every deep model has; an option that several
#: models take is one :class:`~hypnoscope.models.base.ModelOption`, declared alike.
MODEL_OPTIONS: dict[str, tuple[ModelOption, ...]] = {
    **{f"{a}-context": _STRETCH_OPTIONS for a in ("svm", "rf", "lightgbm")},
    "msmae-cnn": _MSMAE_OPTIONS,
    "msmae-cnn-rf": _MSMAE_OPTIONS,
    "mc2sleepnet": (
        _MASK_RATIO,
        _PRETRAIN_EPOCHS,
        ModelOption("backbone_epochs", "epochs of each backbone's pre-training as a "
                    "single-epoch classifier before the contrastive step (preset default; "
                    "0 = none)", int, metavar="N"),
        ModelOption("init_from", "start from the weights of another trained mc2sleepnet "
                    "(e.g. pre-trained on a large cohort); with --pretrain-epochs 0 only "
                    "the sequence level is fine-tuned", str, metavar="MODEL_PATH",
                    model_file=True),
        ModelOption("finetune", "keep the pre-trained model, no fine-tuning (the paper's "
                    "rows marked with a Gamma)", flag="--pretrain-only", switch=False),
        ModelOption("channels", "channels fed to the network, EEG first (default 1: one "
                    "EEG)", int, metavar="N"),
    ),
}

#: name -> preset of :data:`hypnoscope.signal.preprocessing.PRESETS` that the raw
#: recordings of the model's training data go through (models not named: the default
#: preprocessing). The models of the MSMAE-CNN paper low-pass as the paper does;
#: MC²SleepNet's paper filters nothing.
MODEL_PREPROCESSING: dict[str, str] = {"msmae-cnn": "msmae-cnn", "msmae-cnn-rf": "msmae-cnn",
                                       "cnn": "msmae-cnn", "mc2sleepnet": "mc2sleepnet"}


def is_deep_model(name: str) -> bool:
    """Whether the registered model ``name`` is a deep (PyTorch) model."""
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODEL_REGISTRY)}")
    return MODEL_REGISTRY[name][0].split(":")[0] not in FEATURE_MODEL_MODULES


def model_factory(name: str):
    """The factory of the model registered as ``name``, imported.

    Raises
    ------
    ValueError
        If no model has that name.
    MissingExtraError
        If the model needs PyTorch and it is not installed (the message names the
        ``deep`` extra).
    """
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODEL_REGISTRY)}")
    module_name, func_name = MODEL_REGISTRY[name][0].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if is_torch_missing(exc):
            raise MissingExtraError(f"model {name!r} needs PyTorch: {DEEP_EXTRA}") from None
        raise
    return getattr(module, func_name)


def make_model(name: str, **options: Any) -> StagingModel:
    """Build the model registered as ``name`` (see ``hypnoscope models``)."""
    return model_factory(name)(name=name, **options)


__all__ = ["MODEL_REGISTRY", "MODEL_OPTIONS", "MODEL_PREPROCESSING", "ModelOption",
           "MissingExtraError", "StagingModel", "is_deep_model", "load_model", "make_model",
           "model_factory"]
