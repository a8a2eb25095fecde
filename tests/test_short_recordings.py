"""Short recordings (issue #25): the ``short-recording`` notice with the model card's
stretch accuracy for the nearest measured length, and what staging does with a
10-minute recording of wake."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hypnoscope.notices import Notices
from hypnoscope.staging import short_recordings as sr

CARD = {"name": "m", "stretches": {
    "source": "benchmarks/results/real_accuracy_stretches.json", "protocol": "p",
    "accuracy": {"whole": 0.82, "2 h": 0.79, "1 h": 0.78, "30 min": 0.76,
                 "nap 30 min": 0.77}}}


def wake(n_epochs: int = 20, seed: int = 0):
    """A simulated recording of ``n_epochs`` epochs of wake (µV signals, 100 Hz)."""
    from hypnoscope.simulate import simulate_night

    return simulate_night(np.zeros(n_epochs, int), seed=seed, mode="telemetry")


def with_stretches(monkeypatch, card_extra: dict) -> None:
    """Staging loads the shipped models with ``card_extra`` added to their cards."""
    import hypnoscope.staging.pipeline as pipeline

    real = pipeline.load_staging_model

    def load(model):
        mdl, card = real(model)
        return mdl, {**card, **card_extra}

    monkeypatch.setattr(pipeline, "load_staging_model", load)


# ------------------------------------------------------------------ the card
def test_length_labels_parse_as_evaluation_writes_them():
    from hypnoscope.evaluation.stretches import length_label

    for minutes, nap in ((30.0, False), (60.0, False), (120.0, False), (30.0, True),
                         (45.0, False), (90.0, True)):
        assert sr.parse_length_label(length_label(minutes, nap)) == (minutes, nap)
    assert sr.parse_length_label(length_label(None)) == (None, False)
    assert sr.parse_length_label("a while") is None


@pytest.mark.parametrize(("minutes", "label", "acc"), [
    (10, "30 min", 0.76), (30, "30 min", 0.76), (42, "30 min", 0.76), (43, "1 h", 0.78),
    (80, "1 h", 0.78), (90, "2 h", 0.79), (239, "2 h", 0.79), (600, "2 h", 0.79)])
def test_nearest_measured_length_on_a_log_scale(minutes, label, acc):
    # the log-midpoints: sqrt(30 * 60) = 42.4 min, sqrt(60 * 120) = 84.9 min
    got = sr.nearest_stretch(CARD, minutes)
    assert (got["length"], got["accuracy"]) == (label, acc)
    assert got["whole"] == 0.82 and got["source"] == CARD["stretches"]["source"]
    assert got["nap"] == (0.77 if label == "30 min" else None)


def test_cards_without_usable_stretches_give_none():
    assert sr.nearest_stretch({"name": "m"}, 10) is None
    assert sr.nearest_stretch({"stretches": {"accuracy": {"whole": 0.8}}}, 10) is None
    bad = {"stretches": {"accuracy": {"30 min": "n/a", "1 h": 1.5, "2 h": 0.7}}}
    assert sr.nearest_stretch(bad, 10)["length"] == "2 h"  # invalid values are skipped


def test_notice_names_length_and_accuracy_or_its_absence():
    notices = Notices()
    assert sr.short_recording_notice(notices, "a.edf", sr.SHORT_RECORDING_MIN, CARD) is None
    n = sr.short_recording_notice(notices, "a.edf", 9.5, CARD)
    assert (n.code, n.severity) == ("short-recording", "info") and list(notices) == [n]
    assert n.message.startswith("a.edf: short recording: the recording lasts 9.5 min, "
                                 "less than 4 h")
    assert ("the model card of 'm' states an accuracy of 0.76 on 30 min stretches" in
            n.message)
    assert "0.77 on nap-like 30 min stretches" in n.message and "0.82 on whole" in n.message
    n = sr.short_recording_notice(Notices(), "a.edf", 100, {"name": "old"})
    assert "lasts 100 min" in n.message
    assert "the model card of 'old' gives no stretch accuracy" in n.message


# ------------------------------------------------------------------ staging
def test_staging_adds_the_notice_to_short_spans_only(monkeypatch):
    from hypnoscope.staging.pipeline import stage_recording

    with_stretches(monkeypatch, {"stretches": CARD["stretches"]})
    raw = wake(480)  # 4 h: not short
    codes = [n.code for n in stage_recording(raw, model="default").notices]
    assert "short-recording" not in codes
    res = stage_recording(raw, model="default", lights_off=600, lights_on=3000)
    (n,) = [n for n in res.notices if n.code == "short-recording"]
    assert n.message.startswith("<RawArray>: short recording: the span from lights-off to "
                                "lights-on lasts 40 min")
    assert "accuracy of 0.76 on 30 min stretches" in n.message
    res = stage_recording(raw, model="default", lights_on=5400)
    (n,) = [n for n in res.notices if n.code == "short-recording"]
    assert "the span from the recording start to lights-on lasts 90 min" in n.message
    assert "accuracy of 0.79 on 2 h stretches" in n.message  # 90 min: nearer 2 h than 1 h


def test_cli_report_carries_the_notice(tmp_path, caplog):
    import logging

    from hypnoscope.cli import main
    from hypnoscope.simulate import write_sleepedf_pair

    caplog.set_level(logging.INFO, logger="hypnoscope")

    psg, _ = write_sleepedf_pair(wake(20), None, tmp_path, "SW0010E0")
    assert main(["stage", str(psg), "--out", str(tmp_path / "out"), "--no-plot",
                 "--strict"]) == 0  # info: a nap is not questionable input
    report = json.loads((tmp_path / "out" / "SW0010E0.report.json").read_text())
    (n,) = [n for n in report["notices"] if n["code"] == "short-recording"]
    assert n["severity"] == "info"
    assert n["message"].startswith(f"{psg}: short recording: the recording lasts 10 min, "
                                   "less than 4 h")
    assert "model card of 'default'" in n["message"]
    shown = [r for r in caplog.records if r.name == "hypnoscope" and r.getMessage() ==
             n["message"]]
    assert [r.levelname for r in shown] == ["INFO"]  # what the command line prints


# ------------------------------------------------------------------ 10 min of wake
def _population_prior(model) -> bool:
    """Whether ``model``'s per-recording normalisation shrinks toward the training
    population's statistics (``FeatureStagingModel(shrink=...)``); of a length-gated
    model, the member that stages short recordings."""
    return getattr(getattr(model, "short", model), "shrink", None) is not None


def test_a_population_prior_makes_ten_minutes_of_wake_wake(shared_data):
    """The pipeline with a model whose per-recording statistics shrink toward the
    training population's (``shrink``; trained also on random stretches, with the
    recording's length as a feature) stages 10 min of simulated wake W, whatever the
    shipped model: a small such model fitted on six real band-power nights."""
    from hypnoscope.datasets import load_feature_dir
    from hypnoscope.models import make_model
    from hypnoscope.stages import W
    from hypnoscope.staging.pipeline import stage_recording

    nights = load_feature_dir(str(shared_data / "sleepedf_bandpower"))[:6]
    model = make_model("lightgbm-context", shrink=120.0, context={"length": True},
                       crops={"per_night": 2, "min_minutes": 20}, n_jobs=1,
                       n_estimators=50).fit(nights)
    for seed in range(3):
        codes = stage_recording(wake(20, seed=seed), model=model).hypnogram.codes
        assert (codes < 0).sum() <= 1, seed
        assert np.mean(codes[codes >= 0] == W) >= 0.9, (seed, codes)


def test_ten_minutes_of_wake_are_staged_wake():
    """A 10-min recording of simulated wake through the whole pipeline: >= 90 % of its
    scored epochs are W (a simulated movement epoch may be unscored, at most one).

    What this needs of the model: staged on their own, 20 epochs of wake make every
    per-recording statistic a statistic of wake, so a model that normalises by them
    alone sees 'average' epochs. The same signals inside a simulated night are staged W.
    The shipped ``default``'s statistics shrink toward the training population's for a
    short recording, and it stages them W."""
    from hypnoscope.models.storage import load_staging_model
    from hypnoscope.stages import W
    from hypnoscope.staging.pipeline import stage_recording

    assert _population_prior(load_staging_model("default")[0])
    for seed in range(3):
        res = stage_recording(wake(20, seed=seed), model="default")
        codes = res.hypnogram.codes
        # the pipeline stages the whole short recording as one window: no crop, and
        # the second pass keeps it (its sleep period +-30 min covers 10 min)
        assert res.info["span"]["source"] == "recording"
        assert res.info["normalization_window_epochs"] == [0, 20]
        assert (codes < 0).sum() <= 1, seed
        assert np.mean(codes[codes >= 0] == W) >= 0.9, (seed, codes)
