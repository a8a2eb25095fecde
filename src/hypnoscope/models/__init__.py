"""Staging models. One file per model; every CLI model name is registered here.

:data:`MODEL_REGISTRY` maps a name to ``(factory "module:callable", one-line description)``.
``make_model(name, **options)`` builds a :class:`~hypnoscope.models.base.StagingModel`.
"""

from __future__ import annotations

import importlib
from typing import Any

from hypnoscope.models.base import StagingModel, load_model

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


def make_model(name: str, **options: Any) -> StagingModel:
    """Build the model registered as ``name`` (see ``hypnoscope models``)."""
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODEL_REGISTRY)}")
    target, _ = MODEL_REGISTRY[name]
    module_name, func_name = target.split(":")
    factory = getattr(importlib.import_module(module_name), func_name)
    return factory(name=name, **options)


__all__ = ["MODEL_REGISTRY", "StagingModel", "load_model", "make_model"]
