"""Tests of adapting a model to a lab's nights (``hypnoscope.models.adapt``,
``hypnoscope adapt``) on constructed nights whose answers are known."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.cli import main
from hypnoscope.datasets import Night
from hypnoscope.models import make_model
from hypnoscope.models.adapt import (
    AdaptedModel,
    adapt_model,
    evaluate_adapted,
    fit_recalibration,
    load_reviewed_nights,
    reviewed_pairs,
)

N_FEAT = 6
#: stage-dependent feature means (5 stages x 6 features); N2 and N3 differ in feature 0-1
MEANS = np.array([[2.0, 0, 0, 0, 1, 0], [0.8, 0.8, 0, 0, 0, 1], [0, 1.6, 0.5, 0, 0, 0],
                  [1.6, 0, 0.5, 0, 0, 0], [1, 0, 1.5, 1, 0, 0]])


def night(i: int, subject: str, lab: bool, seed: int, n: int = 200) -> Night:
    """A constructed night: blocks of stages, features their stage's mean plus noise. In
    the lab, N2 and N3 have the means of features 0 and 1 swapped (a shift the population
    never shows)."""
    rng = np.random.default_rng([seed, i])
    y = np.repeat(rng.integers(0, 5, size=n // 10), 10)
    means = MEANS.copy()
    if lab:
        means[[2, 3], :2] = means[[3, 2], :2]
    X = means[y] + 0.35 * rng.standard_normal((n, N_FEAT))
    return Night(X=X[:, None, :].astype(np.float32), y=y, subject_id=subject,
                 night_id=f"{subject}__{i % 2 + 1}")


def population(n: int = 6) -> list[Night]:
    return [night(i, f"p{i // 2}", False, 1) for i in range(n)]


def lab_nights(n: int = 6) -> list[Night]:
    return [night(i, f"L{i // 2}", True, 2) for i in range(n)]


@pytest.fixture(scope="module")
def base():
    return make_model("lightgbm", n_estimators=40, n_jobs=1).fit(population())


def test_boost_and_refit_recover_the_shifted_lab(base):
    lab = lab_nights()
    adapt, scored = lab[:2], lab[2:]  # subject L0 adapted on, L1 and L2 scored
    before = evaluate_adapted(base, scored)["accuracy"]
    boosted = adapt_model(base, adapt, "boost", options={"rounds": 60, "learning_rate": 0.1})
    refit = adapt_model(base, adapt, "refit", base_nights=population(),
                        options={"weight": 10})
    after_b = evaluate_adapted(boosted, scored)["accuracy"]
    after_r = evaluate_adapted(refit, scored)["accuracy"]
    # the swap makes N2 and N3 (two of five stages) wrong before adapting
    assert before < 0.75
    assert after_b > before + 0.3
    # refitting mixes the population's conflicting N2/N3 epochs in: better, not as good
    assert before + 0.1 < after_r < after_b
    # the base is left as it was
    assert evaluate_adapted(base, scored)["accuracy"] == before


def test_refuses_its_own_nights_by_id_and_by_content(base):
    lab = lab_nights(4)
    model = adapt_model(base, lab[:2], "boost", options={"rounds": 5})
    with pytest.raises(ValueError, match=r"adapted on 1 of these 3 nights.*L0__1"):
        evaluate_adapted(model, [lab[0], *lab[2:]])
    renamed = dataclasses.replace(lab[1], night_id="other-name")
    with pytest.raises(ValueError, match="adapted on 1 of these 1 nights"):
        evaluate_adapted(model, [renamed])
    assert 0 <= evaluate_adapted(model, lab[2:])["accuracy"] <= 1


def test_card_records_nights_method_and_options(base, tmp_path):
    lab = lab_nights(4)
    model = adapt_model(base, lab[:3], "boost", base_name="toy", options={"rounds": 7})
    ad = model.adaptation
    assert ad["night_ids"] == ["L0__1", "L0__2", "L1__1"]
    assert ad["subjects"] == ["L0", "L1"] and ad["method"] == "boost"
    assert ad["base_model"] == "toy" and ad["options"]["rounds"] == 7
    assert ad["n_scored_epochs"] == 600 and len(ad["digests"]) == 3
    from hypnoscope.models import load_model

    model.save(tmp_path / "lab.joblib")
    again = load_model(tmp_path / "lab.joblib")
    assert isinstance(again, AdaptedModel) and again.metadata["adaptation"] == ad
    np.testing.assert_array_equal(again.predict(lab[3]), model.predict(lab[3]))


def test_recalibration_recovers_a_known_bias_and_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(20000, 5))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    true_b, true_t = np.array([0.8, -0.5, 0.3, -0.9, 0.3]), 1.6
    z = logits / true_t + true_b
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in q])
    b, t = fit_recalibration(p, y, l2=1.0)
    np.testing.assert_allclose(b, true_b - true_b.mean(), atol=0.08)
    assert abs(t - true_t) < 0.1


def test_adapt_refuses_bad_input(base):
    with pytest.raises(ValueError, match="at least one reviewed night"):
        adapt_model(base, [], "boost")
    unscored = dataclasses.replace(lab_nights(1)[0], y=np.full(200, -100))
    with pytest.raises(ValueError, match="L0__1.*no scored epoch"):
        adapt_model(base, [unscored], "boost")
    with pytest.raises(ValueError, match="needs the training nights|give the training"):
        adapt_model(base, lab_nights(1), "refit")
    with pytest.raises(ValueError, match="unknown adaptation method 'finetune'"):
        adapt_model(base, lab_nights(1), "finetune")


# ------------------------------------------------------------------ reading and the CLI
def write_features(folder: Path, nights: list[Night]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in nights:
        np.savez(folder / f"{n.night_id}.npz", features=n.X, labels=n.y)
        (folder / f"{n.night_id}.json").write_text(json.dumps({"subject_id": n.subject_id}))
    return folder


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_model_and_card_and_evaluate_refuses(base, tmp_path, capsys):
    base_path = base.save(tmp_path / "base.joblib")
    lab = lab_nights(4)
    adapt_dir = write_features(tmp_path / "reviewed", lab[:2])
    other_dir = write_features(tmp_path / "other", lab[2:])
    out = tmp_path / "lab.joblib"
    code, text, err = run(capsys, "adapt", "--model", str(base_path), "--features",
                          str(adapt_dir), "--out", str(out), "--method", "boost", "--option",
                          "rounds=5")
    assert code == 0, err
    assert "on 2 night(s) of 1 subject(s), 400 scored epochs" in text
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["adaptation"]["night_ids"] == ["L0__1", "L0__2"]
    assert card["adaptation"]["method"] == "boost" and card["base_model"] == "base"
    assert card["adaptation"]["options"]["rounds"] == 5
    code, _, err = run(capsys, "evaluate", "--model", str(out), "--features", str(adapt_dir))
    assert code == 2 and "was adapted on 2 of these 2 nights" in err
    code, text, err = run(capsys, "evaluate", "--model", str(out), "--features",
                          str(other_dir), "--json")
    assert code == 0, err
    assert json.loads(text)["n_epochs"] == 400


def test_cli_default_method_and_bad_option(base, tmp_path, capsys):
    from hypnoscope.models.adapt import DEFAULT_METHOD, METHOD_DEFAULTS

    base_path = base.save(tmp_path / "base.joblib")
    adapt_dir = write_features(tmp_path / "reviewed", lab_nights(2))
    out = tmp_path / "lab.joblib"
    code, _, err = run(capsys, "adapt", "--model", str(base_path), "--features",
                       str(adapt_dir), "--out", str(out))
    assert code == 0, err
    ad = json.loads(out.with_suffix(".json").read_text())["adaptation"]
    assert ad["method"] == DEFAULT_METHOD and ad["options"] == METHOD_DEFAULTS[DEFAULT_METHOD]
    code, _, err = run(capsys, "adapt", "--model", str(base_path), "--features",
                       str(adapt_dir), "--out", str(out), "--method", "refit")
    assert code == 2 and "--base-features DIR" in err


def test_cli_errors_on_empty_and_unscored_folders(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "lab.joblib"
    code, _, err = run(capsys, "adapt", "--data", str(empty), "--out", str(out))
    assert code == 2 and "no recording with a reviewed scoring" in err
    assert "0 recording(s) in the folder" in err
    (empty / "X1-PSG.edf").write_bytes(b"not read")
    code, _, err = run(capsys, "adapt", "--data", str(empty), "--out", str(out))
    assert code == 2 and "X1-PSG.edf: no reviewed scoring" in err
    code, _, err = run(capsys, "adapt", "--data", str(tmp_path / "missing"), "--out",
                       str(out))
    assert code == 2 and "missing" in err
    assert not out.exists()


def test_reviewed_scoring_is_preferred_to_the_hypnogram(tmp_path):
    for name in ("SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf", "SC4011E0-PSG.edf",
                 "SC4011EH-Hypnogram.edf", "SC4011E0.reviewed.tsv", "SC4011E0.reviewed.edf"):
        (tmp_path / name).write_bytes(b"")
    pairs, skipped = reviewed_pairs(tmp_path)
    assert [(p.name, s.name) for p, s in pairs] == [
        ("SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf"),
        ("SC4011E0-PSG.edf", "SC4011E0.reviewed.tsv")]
    assert skipped == []


def test_reads_a_simulated_recording_with_its_reviewed_scoring(tmp_path):
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    start = dt.datetime(2024, 1, 1, 23, 0, 0)
    stages = ["W"] * 4 + ["N1", "N2", "N2", "N3", "N3", "N2", "R", "R"] * 3 + ["W"] * 4
    hyp = Hypnogram(stages, start_time=start)
    psg, _ = write_sleepedf_pair(simulate_night(hyp, seed=3), hyp, tmp_path, "SC4001E0")
    reviewed = list(stages)
    reviewed[10:14] = ["W"] * 4  # the scorer's corrections
    Hypnogram(reviewed, start_time=start).to_tsv(tmp_path / "SC4001E0.reviewed.tsv")
    model = make_model("lightgbm", n_estimators=5).fit(population(2))
    model.input_kind_ = "features"
    nights = load_reviewed_nights(tmp_path, model)
    assert len(nights) == 1 and nights[0].X.shape[1:] == (3, 10)
    assert nights[0].meta["scoring"].endswith("SC4001E0.reviewed.tsv")
    codes = Hypnogram(reviewed).codes
    assert nights[0].y.tolist() == codes[: len(nights[0].y)].tolist()
