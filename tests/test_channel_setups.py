"""Shipped models for fewer channels, and the automatic choice among them: a one-channel
recording is staged, not refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hypnoscope.models.storage import shipped_models
from hypnoscope.models.vote import DEFAULT_MEMBERS
from hypnoscope.staging.channel_setups import CHANNEL_SETUPS, setup_for_roles, setup_of_card
from hypnoscope.staging.pipeline import choose_model, stage_recording


@pytest.fixture(scope="module")
def night():
    """A simulated 2-h Sleep-EDF-montage night (telemetry) and its hypnogram."""
    from hypnoscope.simulate import sample_hypnogram, simulate_night

    hyp = sample_hypnogram(seed=5, duration_h=2.0, wake_pad_min=15)
    return hyp, simulate_night(hyp, seed=5, mode="telemetry")


def _accuracy(hyp, staged) -> float:
    n = min(hyp.n_epochs, staged.n_epochs)
    ok = (hyp.codes[:n] >= 0) & (staged.codes[:n] >= 0)
    return float(np.mean(hyp.codes[:n][ok] == staged.codes[:n][ok]))


def test_every_setup_has_a_shipped_model_with_its_cv_numbers():
    cards = shipped_models()
    for name, setup in CHANNEL_SETUPS.items():
        card = cards[name]
        assert setup_of_card(card) is setup
        assert card["input"]["channels"] == setup.channels
        cv = card["cross_validation"]
        assert cv["n_folds"] == 10 and "subject-wise" in cv["protocol"]
        assert 0.6 < cv["pooled"]["accuracy"] < 0.9
        assert set(cv["pooled"]["per_class_f1"]) == {"W", "N1", "N2", "N3", "R"}
    # fewer channels cost agreement on the real set, never gain much
    kappa = {n: cards[n]["cross_validation"]["pooled"]["kappa"] for n in CHANNEL_SETUPS}
    assert kappa["eeg1"] < kappa["default"] and kappa["eeg1"] <= kappa["eeg1-eog"] + 0.01


@pytest.mark.parametrize(("roles", "chosen"), [
    (["eeg", "eeg", "eog"], "default"),
    (["eeg", "eeg", "eeg", "eog", "eog", "emg"], "default"),
    (["eeg", "eog", "emg"], "eeg1-eog"),
    (["eeg", "eeg", "emg"], "eeg2"),
    (["eeg"], "eeg1"),
])
def test_choose_model_takes_the_richest_setup_the_roles_allow(roles, chosen):
    name, choice = choose_model(roles, "rec.edf")
    assert name == chosen == choice["chosen"]
    assert choice["channels_available"] == {"eeg": roles.count("eeg"),
                                            "eog": roles.count("eog")}
    assert f"model {chosen!r} was chosen" in choice["reason"]
    assert [s.name for s in setup_for_roles(roles)][0] == chosen


@pytest.mark.parametrize(("names", "roles", "chosen"), [
    (["F4-M1", "C4-M1", "O2-M1", "E1-M2", "E2-M2"], ["eeg"] * 3 + ["eog"] * 2, "default"),
    (["EEG(sec)", "EEG", "EOG(L)", "EOG(R)"], ["eeg", "eeg", "eog", "eog"], "eeg1-eog"),
    (["C3-M2", "C4-M1", "LOC"], ["eeg", "eeg", "eog"], "eeg1-eog"),
    (["Fp1", "Fp2"], ["eeg", "eeg"], "eeg1"),
    (["EEG1", "EEG2", "EOG"], ["eeg", "eeg", "eog"], "default"),  # regions unknown
])
def test_two_eeg_models_need_a_posterior_second_channel(names, roles, chosen):
    name, choice = choose_model(roles, "rec.edf", names)
    assert name == chosen
    if chosen != "default" and roles.count("eeg") == 2:
        assert "all frontal/central" in choice["reason"]


def test_no_eeg_is_a_clear_error():
    with pytest.raises(ValueError, match=r"rec\.edf: no shipped model can stage it: every "
                                         r"model reads at least one EEG channel"):
        choose_model(["eog", "emg"], "rec.edf")


def test_one_channel_recording_is_staged_with_the_one_channel_model(night, tmp_path,
                                                                   caplog):
    import logging

    import mne

    from hypnoscope.cli import main

    hyp, raw = night
    one = raw.copy().pick(["EEG Fpz-Cz"])
    res = stage_recording(one)
    assert res.info["model"]["name"] == "eeg1"
    assert res.info["model_choice"]["chosen"] == "eeg1"
    assert "model-chosen" in [n.code for n in res.info["notices"]]
    assert list(res.info["channels"]) == ["EEG Fpz-Cz"]
    assert _accuracy(hyp, res.hypnogram) > 0.6
    # the named full model still refuses, naming what it needs
    with pytest.raises(ValueError, match="needs two EEG channels .* and one EOG channel"):
        stage_recording(one, model="default")
    # the CLI announces the choice and records it in the report
    path = tmp_path / "headband.edf"
    mne.export.export_raw(path, one, verbose="error")
    ref = hyp.to_tsv(tmp_path / "headband.reference.tsv")
    with caplog.at_level(logging.INFO, logger="hypnoscope"):
        assert main(["stage", str(path), "--out", str(tmp_path / "out"), "--no-plot",
                     "--reference", str(ref)]) == 0
    assert "model 'eeg1' was chosen for the channels found (1 EEG, 0 EOG)" in caplog.text
    rep = json.loads((tmp_path / "out" / "headband.report.json").read_text())
    assert any(n["code"] == "model-chosen" for n in rep["notices"])
    assert rep["model"]["name"] == "eeg1"
    assert "was chosen for the channels found" in rep["model"]["chosen_by"]
    assert rep["agreement"]["accuracy"] > 0.6


def test_eeg_and_eog_recording_and_a_dead_channel_use_smaller_models(night):
    hyp, raw = night
    two = raw.copy().pick(["EEG Fpz-Cz", "EOG horizontal"])
    res = stage_recording(two)
    assert res.info["model"]["name"] == "eeg1-eog"
    assert list(res.info["channels"]) == ["EEG Fpz-Cz", "EOG horizontal"]
    assert _accuracy(hyp, res.hypnogram) > 0.65
    # Fpz-Cz flat all night: dropped, and the night is staged from Pz-Oz + EOG
    dead = raw.copy().pick(["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"])
    dead.apply_function(lambda x: x * 0.0, picks=["EEG Fpz-Cz"])
    res = stage_recording(dead)
    assert res.info["model"]["name"] == "eeg1-eog"
    assert res.info["quality"]["channels_dropped"].keys() == {"EEG Fpz-Cz"}
    codes = [n.code for n in res.info["notices"]]
    assert "channel-dropped" in codes and "model-chosen" in codes
    assert list(res.info["channels"]) == ["EEG Pz-Oz", "EOG horizontal"]


def test_shipped_vote_is_named_only_and_stages_like_default(night):
    """``vote`` (lightgbm-vote for recordings of 4 h or more, the default's short member
    for shorter ones; the vote's nested-CV numbers on its card) is never the automatic
    choice, stages with ``model="vote"``, and agrees with the default on most epochs."""
    from hypnoscope.models.length_gate import DEFAULT_SHORT

    cards = shipped_models()
    card = cards["vote"]
    assert card["architecture"] == "length-gated"
    assert card["options"]["night"] == {"model": "lightgbm-vote"}
    assert card["options"]["short"] == DEFAULT_SHORT
    cv = card["cross_validation"]
    assert cv["n_folds"] == 10 and "nested" in cv["protocol"]
    assert cv["pooled"]["kappa"] > cards["default"]["cross_validation"]["pooled"]["kappa"]
    assert card["combination"]["members"] == [name for name, _, _ in DEFAULT_MEMBERS]
    assert sum(card["combination"]["weights"]) == pytest.approx(1.0)
    assert choose_model(["eeg", "eeg", "eog"], ch_names=[
        "EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"])[0] == "default"
    hyp, raw = night
    voted = stage_recording(raw, model="vote")
    default = stage_recording(raw)
    assert voted.info["model"]["name"] == "vote"
    assert _accuracy(hyp, voted.hypnogram) > 0.7
    # a 2-h recording: both stage it with the same short member, trained alike
    assert np.array_equal(voted.hypnogram.codes, default.hypnogram.codes)
    # a night of 4 h or more goes to the vote
    from hypnoscope.datasets import Night
    from hypnoscope.models.storage import load_staging_model
    from hypnoscope.models.vote import CrossFitVote

    model, _ = load_staging_model("vote")
    long = Night(X=np.zeros((480, 3, 10), np.float32), y=np.zeros(480, int),
                 subject_id="s", night_id="n")
    assert isinstance(model.member_for(long), CrossFitVote)
    assert model.member_for(long) is model.night and model.short is not model.night


def test_setup_nights_pools_the_one_eeg_derivations():
    from hypnoscope.datasets import Night
    from hypnoscope.staging.channel_setups import setup_nights

    X = np.stack([np.full((4, 10), c, dtype=np.float32) for c in range(3)], axis=1)
    n = Night(X=X, y=np.zeros(4, int), subject_id="s1", night_id="s1__1",
              meta={"channel_names": ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]})
    views = setup_nights([n], "eeg1")
    assert [v.night_id for v in views] == ["s1__1", "s1__1~EEG Pz-Oz"]
    assert all(v.subject_id == "s1" and v.X.shape == (4, 1, 10) for v in views)
    assert views[0].X[0, 0, 0] == 0 and views[1].X[0, 0, 0] == 1  # Fpz-Cz, then Pz-Oz
    assert views[1].meta["channel_names"] == ["EEG Fpz-Cz"]  # the model's input slot
    assert views[1].meta["derivations"] == ["EEG Pz-Oz"]
    assert [v.night_id for v in setup_nights([n], "eeg1", pool=False)] == ["s1__1"]
    two = setup_nights([n], "eeg1-eog")  # no pool: one view, channels 0 and 2
    assert len(two) == 1 and two[0].X[0, :, 0].tolist() == [0.0, 2.0]
