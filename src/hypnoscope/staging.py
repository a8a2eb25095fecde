"""Stage a whole night: recording in, :class:`~hypnoscope.hypnogram.Hypnogram` out.

:func:`stage` reads a PSG (path or :class:`mne.io.BaseRaw`), computes the input of the
chosen model and returns a hypnogram with per-epoch stages, probabilities and confidence.

:func:`stage_file` stages one recording file and writes its output set (hypnogram TSV
and EDF+, HTML/JSON report, PNG figure), with agreement metrics when a reference
hypnogram is given; ``hypnoscope stage`` calls it per recording.

Models are named as in :mod:`hypnoscope.models.storage` (shipped names such as
``default``, model files, or model objects). ``default`` is a band-power model trained
on the real Sleep-EDF band-power set (see :mod:`hypnoscope.bandpower`).

Normalisation window
--------------------
The real band-power set z-scores each recording over the night cropped to 30 min of wake
around the sleep period. Without a hypnogram that period is unknown, so band-power models
stage twice (``normalize="sleep-period"``, the default): first with statistics over the
whole recording, then with statistics over the sleep period (+-30 min) that the first
pass found, on the epochs of that period only (as the training nights were cropped before
any per-night statistic); epochs outside it keep the first pass. The spectra are computed
once (see :class:`hypnoscope.bandpower.BandPowerNight`), so the second pass costs one
more model prediction.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .hypnogram import Hypnogram
from .models.storage import DEFAULT_MODEL, load_staging_model
from .stages import UNSCORED, sleep_period_slice


def model_input(model, card: dict[str, Any]) -> str:
    """``"bandpower"`` or ``"signals"``: what the model consumes."""
    meta = getattr(model, "metadata", {}) or {}
    rep = card.get("input", {}).get("representation") or meta.get("input", {}).get(
        "representation")
    if rep:
        return str(rep)
    # feature models record what they were fitted on in ``input_kind_``
    kind = getattr(model, "input_kind_", None) or getattr(model, "input_kind", "features")
    return "signals" if kind == "signals" else "bandpower"


@dataclass
class StagingResult:
    """A staged recording: the hypnogram plus what was done to get it."""

    hypnogram: Hypnogram
    info: dict[str, Any] = field(default_factory=dict)


def _check_proba(proba: np.ndarray, n_epochs: int, n_classes: int, name: str) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (n_epochs, n_classes):
        raise RuntimeError(f"model {name!r} returned probabilities of shape {proba.shape}, "
                           f"expected ({n_epochs}, {n_classes})")
    proba = np.clip(np.nan_to_num(proba, nan=0.0), 0.0, None)
    s = proba.sum(axis=1, keepdims=True)
    bad = s[:, 0] <= 0
    proba[bad] = 1.0 / n_classes
    s[bad] = 1.0
    return proba / s


def _predict_bandpower(model, card, recording, eeg, eog, normalize: str,
                       timings: dict[str, float]) -> tuple[np.ndarray, dict[str, Any]]:
    from . import bandpower
    from .datasets import Night

    trained = ((getattr(model, "metadata", {}) or {}).get("training_data") or {})
    shape = trained.get("epoch_shape")
    if shape is not None and list(shape) != [len(bandpower.CHANNEL_LAYOUT),
                                             len(bandpower.FEATURE_NAMES)]:
        raise ValueError(
            f"model {card.get('name', 'model')!r} was trained on precomputed per-epoch "
            f"features of shape {list(shape)}; staging a recording can compute only the "
            f"band-power features of the shipped models ({len(bandpower.CHANNEL_LAYOUT)} "
            f"channels x {len(bandpower.FEATURE_NAMES)}). Train with 'hypnoscope train "
            "--data DIR' to get a model that stages raw recordings.")
    t = time.perf_counter()
    night = bandpower.extract_bandpower_from(recording, eeg=eeg, eog=eog)
    timings["features_sec"] = time.perf_counter() - t
    n = night.n_epochs
    name = card.get("name", "model")

    def predict(window: slice) -> np.ndarray:
        # features of the epochs in ``window`` only, z-scored over that window: the
        # training nights were cropped the same way before any per-night statistic
        feats = night.features(window)[window]
        m = len(feats)
        nt = Night(X=feats, y=np.full(m, UNSCORED), subject_id="subject", night_id="night",
                   kind="features", channels=list(bandpower.CHANNEL_LAYOUT),
                   roles=list(bandpower.CHANNEL_ROLES),
                   onsets_sec=night.onsets_sec[window])
        return _check_proba(model.predict_proba(nt), m, model.n_classes, name)

    if normalize not in ("sleep-period", "recording"):
        raise ValueError(f"normalize must be 'sleep-period' or 'recording', got {normalize!r}")
    t = time.perf_counter()
    window = slice(0, n)
    proba = predict(window)
    if normalize == "sleep-period":
        crop = sleep_period_slice(proba.argmax(axis=1), bandpower.WAKE_CROP_SEC / 60.0,
                                  bandpower.EPOCH_SEC)
        if crop is not None and (crop.start, crop.stop) != (0, n):
            # epochs outside the detected sleep period (+-30 min) keep the first pass
            window = crop
            proba[crop] = predict(crop)
    timings["predict_sec"] = time.perf_counter() - t
    info = {"channels": dict(zip(night.ch_names, night.roles, strict=True)),
            "normalization_window_epochs": [window.start, window.stop],
            "ica": night.meta.get("ica"), "start_time": night.meta.get("start_time"),
            "source": night.meta.get("source")}
    if night.meta.get("reader_warnings"):  # units, flat channels, NaNs: shown in the report
        info["warnings"] = night.meta["reader_warnings"]
    return proba, info


def _predict_signals(model, card, recording, eeg, eog, emg,
                     timings: dict[str, float]) -> tuple[np.ndarray, dict[str, Any]]:
    """Stage with a model trained on signal nights (``hypnoscope train --data``): the
    recording goes through the same reader and continuous preprocessing as the training
    nights (:func:`hypnoscope.recordings.load_recording`, no crop), then the channels are
    matched to the training roles."""
    from .recordings import load_recording

    t = time.perf_counter()
    trained = (getattr(model, "metadata", {}) or {}).get("training_data", {}) or {}
    night = load_recording(recording, None, eeg=eeg, eog=eog, emg=emg,
                           sfreq=float(trained.get("sfreq") or 100.0), crop_wake_min=None,
                           preprocessing=trained.get("preprocessing") or "default",
                           cache=False)
    roles = list(night.roles)
    want = card.get("input", {}).get("roles") or trained.get("roles")
    idx = list(range(len(roles)))
    if want:
        idx, used = [], set()
        for role in want:
            cand = [i for i, r in enumerate(roles)
                    if i not in used and (r == role or r.startswith(role))]
            if not cand:
                raise ValueError(
                    f"{night.meta.get('source', 'recording')}: model {card.get('name')!r} "
                    f"needs channels with roles {list(want)}; channels found: "
                    f"{dict(zip(night.channels, roles, strict=True))}")
            idx.append(cand[0])
            used.add(cand[0])
    if idx != list(range(len(roles))):  # keep only the channels the model was trained on
        night = dataclasses.replace(night, X=night.X[:, idx],
                                    channels=[night.channels[i] for i in idx],
                                    roles=[roles[i] for i in idx])
    timings["features_sec"] = time.perf_counter() - t
    n = night.n_epochs
    t = time.perf_counter()
    proba = _check_proba(model.predict_proba(night), n, model.n_classes,
                         card.get("name", "model"))
    timings["predict_sec"] = time.perf_counter() - t
    start = night.meta.get("start_time")
    if isinstance(start, str):
        import datetime as _dt

        start = _dt.datetime.fromisoformat(start)
    info = {"channels": dict(zip(night.channels, night.roles, strict=True)),
            "start_time": start,
            "source": night.meta.get("source")}
    warns = (night.meta.get("reader") or {}).get("warnings")
    if warns:  # units, flat channels, NaNs: shown in the report
        info["warnings"] = list(warns)
    return proba, info


def stage_recording(recording, model: Any = DEFAULT_MODEL, eeg=None, eog=None, emg=None,
                    normalize: str = "sleep-period") -> StagingResult:
    """Stage one recording; like :func:`stage` but also returns what was done.

    Returns
    -------
    StagingResult
        ``hypnogram`` and ``info`` (model card summary, channels used, normalisation
        window, ICA report, timings).
    """
    t0 = time.perf_counter()
    mdl, card = load_staging_model(model)
    timings: dict[str, float] = {}
    kind = model_input(mdl, card)
    if kind == "bandpower":
        proba, info = _predict_bandpower(mdl, card, recording, eeg, eog, normalize, timings)
    elif kind == "signals":
        proba, info = _predict_signals(mdl, card, recording, eeg, eog, emg, timings)
    else:
        raise ValueError(f"model {card.get('name')!r} has an unknown input {kind!r}")
    hyp = Hypnogram(proba.argmax(axis=1), epoch_sec=30.0, onset_sec=0.0,
                    start_time=info.pop("start_time", None), probabilities=proba,
                    n_classes=mdl.n_classes)
    timings["total_sec"] = time.perf_counter() - t0
    info.update({
        "model": {k: card.get(k) for k in ("name", "summary", "trained_on", "path")
                  if card.get(k) is not None},
        "input": kind, "n_epochs": hyp.n_epochs, "timings": timings,
    })
    return StagingResult(hyp, info)


def stage(recording, model: Any = DEFAULT_MODEL, eeg=None, eog=None, emg=None) -> Hypnogram:
    """Stage a PSG recording.

    Parameters
    ----------
    recording : str, path or mne.io.BaseRaw
        EDF/EDF+/BDF file or a Raw object (channels recognised by name, see
        :func:`hypnoscope.io.read_psg`).
    model : str, path or StagingModel, default "default"
        A shipped model name (:func:`hypnoscope.models.storage.shipped_models`), a model
        file or a model object.
    eeg, eog, emg : str, list of str or None
        Channel overrides. The default model uses two EEG channels (Fpz-Cz, Pz-Oz or the
        nearest) and one EOG channel; it ignores EMG.

    Returns
    -------
    Hypnogram
        5-class stages per 30-s epoch from the recording start, with ``probabilities``
        (rows sum to 1) and ``confidence``.

    Raises
    ------
    ValueError
        If the model needs a channel the recording lacks (the message lists the channels
        found), or the file cannot be read.

    Examples
    --------
    >>> hyp = stage("SC4001E0-PSG.edf")  # doctest: +SKIP
    >>> hyp.sleep_statistics()["total_sleep_min"]  # doctest: +SKIP
    """
    return stage_recording(recording, model=model, eeg=eeg, eog=eog, emg=emg).hypnogram


def stage_file(psg: str | os.PathLike, out_dir: str | os.PathLike,
               model: Any = DEFAULT_MODEL, eeg=None, eog=None, emg=None,
               reference: str | os.PathLike | None = None, plot: bool = True,
               ) -> dict[str, Any]:
    """Stage one recording file and write its output set into ``out_dir``.

    With ``S`` the :func:`hypnoscope.recordings.recording_stem` of ``psg``, every file is
    written atomically: ``S.hypnogram.tsv`` (``onset duration stage confidence p_*``),
    ``S.hypnogram.edf`` (EDF+ stage annotations), ``S.report.json`` and
    ``S.report.html`` (sleep statistics, plus agreement with ``reference``) and, with
    ``plot``, ``S.hypnogram.png`` (hypnogram and hypnodensity).

    Parameters
    ----------
    psg : path
        EDF/BDF recording.
    out_dir : path
        Output folder (created if needed).
    model, eeg, eog, emg
        As in :func:`stage`.
    reference : path, optional
        Expert hypnogram of the same recording (any format
        :func:`hypnoscope.read_hypnogram` reads) for agreement metrics.
    plot : bool, default True
        Write the PNG figure.

    Returns
    -------
    dict
        Summary row: ``recording``, ``stem``, ``status`` ("ok"), ``n_epochs``, ``hours``,
        ``tst_min``, ``se_pct``, ``mean_confidence``, ``seconds``, ``outputs`` (kind ->
        path) and, with a reference, ``accuracy``, ``kappa``, ``macro_f1``.

    Raises
    ------
    FileNotFoundError
        If ``psg`` does not exist. Any staging or writing error is raised too (a batch
        caller decides whether to go on).
    """
    from .hypnogram import read_hypnogram
    from .recordings import recording_stem
    from .report import write_report

    psg = Path(psg)
    if not psg.is_file():
        raise FileNotFoundError(f"recording not found: {psg}")
    out_dir = Path(out_dir)
    stem = recording_stem(psg)
    ref = read_hypnogram(reference) if reference is not None else None
    t0 = time.perf_counter()
    result = stage_recording(str(psg), model=model, eeg=eeg, eog=eog, emg=emg)
    hyp = result.hypnogram
    info = dict(result.info)
    info["recording"] = psg.name
    info["source"] = str(psg)
    if reference is not None:
        info["reference"] = str(reference)
    if hyp.start_time is not None:
        info["start_time"] = hyp.start_time.isoformat(sep=" ")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"tsv": out_dir / f"{stem}.hypnogram.tsv", "edf": out_dir / f"{stem}.hypnogram.edf"}
    hyp.to_tsv(paths["tsv"])
    hyp.to_edf(paths["edf"])
    cmp = None if ref is None else hyp.compare(ref)
    html_path, json_path = write_report(out_dir / f"{stem}.report", hyp, info, reference=ref,
                                        comparison=cmp)
    paths.update(html=html_path, json=json_path)
    if plot:
        paths["png"] = _write_png(hyp, out_dir / f"{stem}.hypnogram.png", psg.name)
    stats = hyp.sleep_statistics()
    row: dict[str, Any] = {
        "recording": str(psg), "stem": stem, "status": "ok", "n_epochs": hyp.n_epochs,
        "hours": hyp.duration_sec / 3600, "tst_min": stats.get("total_sleep_min"),
        "se_pct": stats.get("sleep_efficiency_pct"),
        "mean_confidence": float(hyp.confidence.mean()) if hyp.n_epochs else float("nan"),
        "seconds": time.perf_counter() - t0, "outputs": {k: str(v) for k, v in paths.items()},
    }
    if cmp is not None:
        row.update(accuracy=cmp["epochs"]["accuracy"], kappa=cmp["epochs"]["kappa"],
                   macro_f1=cmp["epochs"]["macro_f1"])
    return row


def _write_png(hyp: Hypnogram, path: Path, title: str) -> Path:
    """Hypnogram above hypnodensity, saved atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .plots import save_figure

    fig, axes = plt.subplots(2, 1, figsize=(11, 4.6), sharex=True,
                             gridspec_kw={"height_ratios": [1.1, 1]})
    hyp.plot(ax=axes[0])
    axes[0].set_title(title)
    if hyp.probabilities is not None:
        hyp.plot_hypnodensity(ax=axes[1])
    else:  # pragma: no cover - staged hypnograms always have probabilities
        axes[1].set_visible(False)
    return save_figure(fig, path, dpi=110, close=True)
