"""Tests of ``hypnoscope train``, ``hypnoscope evaluate`` and ``hypnoscope models``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.cli import main
from hypnoscope.models import MODEL_REGISTRY, load_model
from hypnoscope.stages import UNSCORED, to_3class

#: stage-dependent feature means of a toy (n, 2, 3) feature layout
MEANS = np.array([[2.0, 0, 0], [0.8, 0.8, 0], [0, 1.6, 0.5], [0, 0.5, 2], [1, 0, 1.5]])
METRIC_KEYS = {"accuracy", "macro_f1", "kappa", "per_class_f1", "confusion_matrix",
               "n_epochs", "macro_precision", "macro_recall", "precision", "recall",
               "support", "per_class"}


def write_feature_dir(directory: Path, subjects=("01", "02", "03"), seed: int = 0,
                      sidecar_subject: dict[str, str] | None = None) -> Path:
    """Two nights per subject as ``SS__N.npz`` (+ JSON sidecars for some)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for s in subjects:
        for night in (1, 2):
            y = np.repeat(rng.integers(0, 5, size=20), 6)
            X = MEANS[y][:, None, :] + 0.5 * rng.standard_normal((len(y), 2, 3))
            y[:2] = UNSCORED
            stem = f"{s}__{night}"
            np.savez(directory / f"{stem}.npz", features=X.astype(np.float32), labels=y,
                     onsets_sec=np.arange(len(y)) * 30.0)
            if sidecar_subject and stem in sidecar_subject:
                (directory / f"{stem}.json").write_text(
                    json.dumps({"subject_id": sidecar_subject[stem]}))
    return directory


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def feature_dirs(tmp_path) -> tuple[Path, Path]:
    return (write_feature_dir(tmp_path / "train", seed=0),
            write_feature_dir(tmp_path / "test", subjects=("07", "08"), seed=1))


@pytest.mark.parametrize("name", ["lightgbm-context", "rf", "svm"])
def test_train_evaluate_round_trip_on_feature_dir(tmp_path, capsys, feature_dirs, name):
    train, test = feature_dirs
    model_path = tmp_path / f"{name}.joblib"
    code, out, _ = run(capsys, "train", "--model", name, "--features", str(train), "--out",
                       str(model_path))
    assert code == 0
    assert "6 nights / 3 subjects" in out and str(model_path) in out
    model = load_model(model_path)
    assert model.name == name and model.n_classes == 5
    assert model.metadata["training_data"]["subjects"] == ["01", "02", "03"]
    assert model.metadata["cli"]["input"] == "features"

    code, out, _ = run(capsys, "evaluate", "--model", str(model_path), "--features",
                       str(test), "--json")
    assert code == 0
    metrics = json.loads(out)
    assert set(metrics) == METRIC_KEYS
    ys = [np.load(f)["labels"] for f in sorted(test.glob("*.npz"))]
    y = np.concatenate(ys)
    assert metrics["n_epochs"] == int((y >= 0).sum())
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (5, 5) and cm.sum() == metrics["n_epochs"]
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y[y >= 0], minlength=5))
    assert metrics["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert metrics["accuracy"] > 0.85 and metrics["kappa"] > 0.8
    assert set(metrics["per_class_f1"]) == {"W", "N1", "N2", "N3", "R"}

    code, text, _ = run(capsys, "evaluate", "--model", str(model_path), "--features",
                        str(test))
    assert code == 0
    assert f"accuracy  {metrics['accuracy']:.4f}" in text
    assert "confusion matrix" in text and "N3" in text


def test_three_class_training(tmp_path, capsys, feature_dirs):
    train, test = feature_dirs
    model_path = tmp_path / "m3.joblib"
    assert run(capsys, "train", "--model", "lightgbm", "--features", str(train), "--out",
               str(model_path), "--classes", "3")[0] == 0
    assert load_model(model_path).n_classes == 3
    code, out, _ = run(capsys, "evaluate", "--model", str(model_path), "--features",
                       str(test), "--json")
    metrics = json.loads(out)
    assert code == 0 and set(metrics["per_class_f1"]) == {"W", "NREM", "R"}
    y3 = to_3class(np.concatenate([np.load(f)["labels"] for f in sorted(test.glob("*.npz"))]))
    np.testing.assert_array_equal(np.array(metrics["confusion_matrix"]).sum(axis=1),
                                  np.bincount(y3[y3 >= 0], minlength=3))


def test_subjects_from_sidecar_and_pattern(tmp_path, capsys):
    d = write_feature_dir(tmp_path / "f", subjects=("11", "12"),
                          sidecar_subject={"11__1": "alice", "11__2": "alice"})
    for f in d.glob("12__*.npz"):  # rename to a layout the default pattern cannot parse
        f.rename(d / f"night-B{f.stem[-1]}-sub12.npz")
    model_path = tmp_path / "m.joblib"
    code, _, err = run(capsys, "train", "--model", "rf", "--features", str(d), "--out",
                       str(model_path))
    assert code == 2 and "subject" in err and "night-B1-sub12" in err
    code, out, _ = run(capsys, "train", "--model", "rf", "--features", str(d), "--out",
                       str(model_path), "--subject-pattern", r"sub(\d+)")
    assert code == 0
    assert load_model(model_path).metadata["training_data"]["subjects"] == ["12", "alice"]


def test_user_errors_exit_2_with_a_clear_message(tmp_path, capsys, feature_dirs):
    train, _ = feature_dirs
    out = str(tmp_path / "m.joblib")
    code, _, err = run(capsys, "train", "--model", "nope", "--features", str(train),
                       "--out", out)
    assert code == 2 and "unknown model 'nope'" in err and "lightgbm-context" in err
    code, _, err = run(capsys, "train", "--model", "rf", "--features",
                       str(tmp_path / "missing"), "--out", out)
    assert code == 2 and "missing" in err
    code, _, err = run(capsys, "evaluate", "--model", str(tmp_path / "none.joblib"),
                       "--features", str(train))
    assert code == 2 and "none.joblib" in err and "not a model file" in err
    with pytest.raises(SystemExit):  # argparse: --features and --data are exclusive
        main(["train", "--model", "rf", "--features", "a", "--data", "b", "--out", out])
    assert not Path(out).exists()


def test_models_lists_every_registered_name(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name, (_, desc) in MODEL_REGISTRY.items():
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [name])
        assert desc[:30] in line
    code, out, _ = run(capsys, "models", "--json")
    assert json.loads(out)["models"] == {k: v[1] for k, v in MODEL_REGISTRY.items()}
    for name in ("svm", "rf", "lightgbm", "svm-context", "rf-context", "lightgbm-context"):
        assert name in MODEL_REGISTRY


def _no_nan(token: str):
    raise AssertionError(f"invalid JSON constant {token}")


#: the stages of the simulated nights of :func:`psg_dirs` (56 epochs)
PSG_STAGES = np.repeat([0, 1, 2, 3, 2, 4, 0, 2, 4, 0], [6, 3, 8, 8, 5, 6, 2, 6, 6, 6])


@pytest.fixture(scope="module")
def psg_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """Simulated Sleep-EDF cassette pairs: two training subjects, one test subject."""
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    root = tmp_path_factory.mktemp("psg")
    for i, rid in enumerate(["SC4001E0", "SC4011E0", "SC4021E0"]):
        out = root / ("test" if i == 2 else "train")
        write_sleepedf_pair(simulate_night(Hypnogram(PSG_STAGES), seed=i), None, out, rid)
    return root / "train", root / "test"


def test_train_evaluate_round_trip_on_psg_dir(tmp_path, capsys, monkeypatch, psg_dirs):
    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    train, test = psg_dirs
    model_path = tmp_path / "psg.joblib"
    code, out, _ = run(capsys, "train", "--model", "rf-context", "--data", str(train),
                       "--out", str(model_path))
    assert code == 0 and "2 nights / 2 subjects" in out
    model = load_model(model_path)
    assert model.input_kind_ == "signals"
    names = model.metadata["feature_names"]
    assert "EEG Fpz-Cz_rel_delta" in names and "EOG horizontal_eog_rapid_logpow" in names
    assert "EMG submental_emg_env_logmean" in names  # the 1 Hz cassette EMG envelope
    code, out, _ = run(capsys, "evaluate", "--model", str(model_path), "--data", str(test),
                       "--json")
    assert code == 0
    metrics = json.loads(out, parse_constant=_no_nan)  # strict JSON: no NaN/Infinity
    assert set(metrics) == METRIC_KEYS
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["n_epochs"] > 30
    # simulated stages differ in their spectra: far above the 5-class chance level
    assert metrics["accuracy"] > 0.6
    # a model trained with --data stages new recordings through the same reader and
    # preprocessing: hypnoscope.stage gives the model's own predictions on that night
    import hypnoscope
    from hypnoscope.signal.nights import load_psg_dir

    psg = next(test.glob("*-PSG.edf"))
    hyp = hypnoscope.stage(psg, model=model_path)
    night = load_psg_dir(test)[0]
    assert hyp.n_epochs == night.n_epochs == 56
    np.testing.assert_array_equal(hyp.codes, model.predict(night))
    # evaluate scored exactly these predictions against the night's labels
    assert metrics["accuracy"] == pytest.approx(
        float((hyp.codes[night.scored] == night.y[night.scored]).mean()))
    np.testing.assert_allclose(hyp.probabilities.sum(axis=1), 1.0)
    code, out, _ = run(capsys, "stage", str(psg), "--model", str(model_path), "--out",
                       str(tmp_path / "staged"), "--no-plot")
    assert code == 0 and (tmp_path / "staged" / "SC4021E0.hypnogram.tsv").is_file()
    # a model trained on raw recordings refuses a feature directory with a clear message
    fdir = write_feature_dir(tmp_path / "f", subjects=("01",))
    code, _, err = run(capsys, "evaluate", "--model", str(model_path), "--features",
                       str(fdir))
    assert code == 2 and "the model was trained on input kind 'signals', epoch shape [" in err
    assert "but this night has input kind 'features', epoch shape [2, 3]" in err


def test_train_from_recordings_writes_its_summary_only_with_the_model(tmp_path, capsys,
                                                                     monkeypatch, psg_dirs):
    """``train --data`` writes ``MODEL.recordings.csv`` (one ok row per recording) with the
    model; a refused run (a hypnogram starting 1 h after its PSG) leaves no file, nor
    touches the earlier model and summary; ``--features`` removes a stale summary."""
    import csv
    import datetime as dt
    import shutil

    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate.night import DEFAULT_START

    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(psg_dirs[0], data)
    model_path = tmp_path / "out" / "m.joblib"
    model_path.parent.mkdir()
    summary = tmp_path / "out" / "m.joblib.recordings.csv"
    assert run(capsys, "train", "--model", "rf", "--data", str(data), "--out",
               str(model_path))[0] == 0
    with open(summary, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(Path(r["recording"]).name, r["status"], r["n_epochs"], r["error"])
            for r in rows] == [("SC4001E0-PSG.edf", "ok", "56", ""),
                               ("SC4011E0-PSG.edf", "ok", "56", "")]
    before = {p.name: p.read_bytes() for p in model_path.parent.iterdir()}

    Hypnogram(PSG_STAGES, start_time=DEFAULT_START + dt.timedelta(hours=1)).to_edf(
        data / "SC4011E0-Hypnogram.edf")
    for out in (model_path, tmp_path / "fresh" / "m.joblib"):
        out.parent.mkdir(exist_ok=True)
        code, _, err = run(capsys, "train", "--model", "rf", "--data", str(data), "--out",
                           str(out))
        assert code == 2 and "SC4011E0" in err and "start" in err
    assert list((tmp_path / "fresh").iterdir()) == []
    assert {p.name: p.read_bytes() for p in model_path.parent.iterdir()} == before

    features = write_feature_dir(tmp_path / "f", subjects=("01",))
    assert run(capsys, "train", "--model", "rf", "--features", str(features), "--out",
               str(model_path))[0] == 0
    assert [p.name for p in model_path.parent.iterdir()] == ["m.joblib"]
    assert load_model(model_path).metadata["cli"]["input"] == "features"


def test_train_ssnet_on_psg_dir_saves_a_loadable_model(tmp_path, capsys, monkeypatch,
                                                      psg_dirs):
    """``train --model ssnet --data`` end to end with tiny settings: the saved model loads,
    records its classes, channels and subject-wise train/validation split, and
    ``evaluate --json`` scores exactly the model's own predictions."""
    from hypnoscope.signal.nights import load_psg_dir
    from hypnoscope.stages import STAGES_5

    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    train, test = psg_dirs
    model_path = tmp_path / "ssnet.joblib"
    code, out, _ = run(capsys, "train", "--model", "ssnet", "--data", str(train), "--out",
                       str(model_path), "--preset", "small", "--epochs", "1", "--seq-len",
                       "4")
    assert code == 0
    # two training subjects and the default --val-fraction 0.1: at least one subject is
    # held out whole for validation, so one trains and the other validates
    assert "1 nights / 1 subjects" in out and "(validation: 1 nights)" in out
    model = load_model(model_path)
    assert model.name == "ssnet" and model.n_classes == 5
    assert tuple(model.classes) == STAGES_5
    meta = model.metadata
    assert meta["classes"] == list(STAGES_5)
    train_nights = load_psg_dir(train)
    assert meta["channels"] == list(train_nights[0].channels)
    assert meta["channels"][:3] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    fit_subjects = set(meta["training_data"]["subjects"])
    val_subjects = set(meta["validation_subjects"])
    assert len(fit_subjects) == len(val_subjects) == 1
    assert fit_subjects.isdisjoint(val_subjects)
    assert fit_subjects | val_subjects == {n.subject_id for n in train_nights}
    assert meta["cli"]["n_val_nights"] == 1 and meta["cli"]["input"] == "data"
    assert meta["config"]["seq_len"] == 4 and meta["config"]["epochs"] == 1
    assert meta["training"]["direct"]["epochs_run"] == 1

    code, out, _ = run(capsys, "evaluate", "--model", str(model_path), "--data", str(test),
                       "--json")
    assert code == 0
    metrics = json.loads(out, parse_constant=_no_nan)  # strict JSON: no NaN/Infinity
    assert set(metrics) == METRIC_KEYS
    # the accuracy is that of model.predict on the same nights, computed independently
    nights = load_psg_dir(test)
    pred = np.concatenate([model.predict(n) for n in nights])
    y = np.concatenate([n.y for n in nights])
    scored = y >= 0
    assert metrics["n_epochs"] == int(scored.sum()) == 56
    assert metrics["accuracy"] == pytest.approx(float((pred[scored] == y[scored]).mean()))
    cm = np.array(metrics["confusion_matrix"])
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y[scored], minlength=5))
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(pred[scored], minlength=5))


def test_train_val_fraction_checked_before_loading(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--model", "ssnet", "--features",
                       str(tmp_path / "absent"), "--out", str(tmp_path / "m.joblib"),
                       "--val-fraction", "1")
    assert code == 2 and "--val-fraction must be in [0, 1), got 1.0" in err
    import inspect

    from hypnoscope.cli import build_parser
    from hypnoscope.evaluation.splits import validation_split

    args = build_parser().parse_args(["train", "--model", "ssnet", "--features", "d",
                                      "--out", "m"])
    default = inspect.signature(validation_split).parameters["fraction"].default
    assert args.val_fraction == default == 0.15


def test_train_vote_uses_every_subject_and_needs_band_powers(tmp_path, capsys, feature_dirs):
    """``lightgbm-vote`` chooses on its own inner folds, so no validation subjects are held
    out; its augmented member needs the band-power layout and says so."""
    train, _ = feature_dirs
    code, _, err = run(capsys, "train", "--model", "lightgbm-vote", "--features", str(train),
                       "--out", str(tmp_path / "v.joblib"))
    assert code == 2 and "band-power augmentation needs" in err and "01__1" in err
    assert not (tmp_path / "v.joblib").exists()
    from hypnoscope.signal.bandpower import assemble_features

    rng = np.random.default_rng(0)
    bp_dir = tmp_path / "bp"
    bp_dir.mkdir()
    for s in ("01", "02", "03", "04"):
        y = np.repeat(rng.integers(0, 5, size=12), 5)
        bp = rng.uniform(0.5, 1.5, size=(len(y), 3, 5))
        bp[:, 0, 0] *= np.exp(y)
        np.savez(bp_dir / f"{s}__1.npz", features=assemble_features(bp).astype(np.float32),
                 labels=y)
    code, out, _ = run(capsys, "train", "--model", "lightgbm-vote", "--features", str(bp_dir),
                       "--out", str(tmp_path / "v.joblib"))
    assert code == 0 and "4 nights / 4 subjects" in out and "validation" not in out
    model = load_model(tmp_path / "v.joblib")
    assert model.metadata["training_data"]["subjects"] == ["01", "02", "03", "04"]
    assert sum(model.metadata["combination"]["weights"]) == pytest.approx(1.0)


def _toy_model(name: str, n_classes: int = 5, seed: int = 0, rounds: int = 100):
    """A model that a test registers: LightGBM with ``rounds`` boosting rounds."""
    from hypnoscope.models.feature_classifiers import make_feature_model

    model = make_feature_model("lightgbm", n_classes=n_classes, seed=seed,
                               n_estimators=rounds)
    model.name = name
    return model


def test_models_declare_their_train_options(tmp_path, capsys, feature_dirs, monkeypatch):
    """``hypnoscope train`` offers the options each model declares
    (``hypnoscope.models.MODEL_OPTIONS``): a newly registered model's own option gets
    its flag (in ``--help`` too) with no change to the command line, and its value
    reaches the model's config; a model that does not declare it refuses it; the
    declared options of msmae-cnn reach its config."""
    import hypnoscope.models as models
    from hypnoscope.cli import build_parser
    from hypnoscope.cli.train import _model_options
    from hypnoscope.models import ModelOption

    monkeypatch.setitem(models.MODEL_REGISTRY, "toy", ("test_cli_train:_toy_model", "toy"))
    monkeypatch.setitem(models.MODEL_OPTIONS, "toy",
                        (ModelOption("rounds", "boosting rounds", int, metavar="N"),))
    monkeypatch.setattr(models, "FEATURE_MODEL_MODULES",
                        (*models.FEATURE_MODEL_MODULES, "test_cli_train"))
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--rounds N" in capsys.readouterr().out
    train, _ = feature_dirs
    code, _, _ = run(capsys, "train", "--model", "toy", "--features", str(train), "--out",
                     str(tmp_path / "toy.joblib"), "--rounds", "7")
    assert code == 0
    model = load_model(tmp_path / "toy.joblib")
    assert model.name == "toy" and model.config["params"] == {"n_estimators": 7}
    code, _, err = run(capsys, "train", "--model", "rf", "--features", str(train), "--out",
                       str(tmp_path / "rf.joblib"), "--rounds", "7")
    assert code == 2 and "--rounds do(es) not apply to rf; models that take it: toy" in err
    ns = build_parser().parse_args(["train", "--model", "msmae-cnn", "--features", "d",
                                    "--out", "m", "--mask-ratio", "0.3", "--scales", "1", "5",
                                    "--freeze-encoder"])
    options = _model_options(ns)
    assert options == {"mask_ratio": 0.3, "scales": (1.0, 5.0), "freeze_encoder": True}
    config = models.make_model("msmae-cnn", **options).config
    assert config["mask_ratio"] == 0.3 and config["freeze_encoder"] is True


def test_train_a_stretch_robust_context_model(tmp_path, capsys, feature_dirs):
    """--crops, --shrink and --recording-length reach a context feature model; other
    models refuse them by name."""
    from hypnoscope.models import load_model

    train, _ = feature_dirs
    out = tmp_path / "m.joblib"
    code, _, err = run(capsys, "train", "--model", "lightgbm-context", "--features",
                       str(train), "--crops", "1", "--shrink", "auto", "--recording-length",
                       "--out", str(out))
    assert code == 0, err
    m = load_model(out)
    assert m.config["crops"]["per_night"] == 1 and m.config["shrink"] == "auto"
    assert m.config["context"]["length"] is True and isinstance(m.shrink_, float)
    code, _, err = run(capsys, "train", "--model", "lightgbm", "--features", str(train),
                       "--shrink", "60", "--out", str(tmp_path / "x.joblib"))
    assert code == 2 and "--shrink" in err and "lightgbm-context" in err
    with pytest.raises(SystemExit):
        run(capsys, "train", "--model", "lightgbm-context", "--features", str(train),
            "--shrink", "-3", "--out", str(tmp_path / "y.joblib"))


def _band_power_dir(directory: Path, subjects=("81", "82"), seed: int = 0) -> Path:
    """One night per subject with the shipped models' input: (n, 3 channels, 10 bands)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for s in subjects:
        y = np.repeat(rng.integers(0, 5, size=12), 10)
        X = rng.standard_normal((len(y), 3, 10)) + y[:, None, None]
        np.savez(directory / f"{s}__1.npz", features=X.astype(np.float32), labels=y)
    return directory


def test_evaluate_resolves_a_shipped_model_name(tmp_path, capsys):
    """``evaluate --model default`` scores the shipped model, exactly as its file does."""
    from hypnoscope.datasets import load_feature_dir
    from hypnoscope.evaluation.metrics import evaluate
    from hypnoscope.models.storage import load_staging_model, resolve_model_path

    d = _band_power_dir(tmp_path / "bp")
    code, out, err = run(capsys, "evaluate", "--model", "default", "--features", str(d),
                         "--json")
    assert code == 0, err
    by_name = json.loads(out)
    code, out, _ = run(capsys, "evaluate", "--model", str(resolve_model_path("default")),
                       "--features", str(d), "--json")
    assert code == 0 and json.loads(out) == by_name
    model, _ = load_staging_model("default")
    nights = load_feature_dir(d)
    expected = evaluate(np.concatenate([n.y for n in nights]),
                        np.concatenate([model.predict(n) for n in nights]), n_classes=5)
    assert by_name["confusion_matrix"] == np.asarray(expected["confusion_matrix"]).tolist()
    assert by_name["n_epochs"] == 240 and "notices" not in by_name  # 81, 82: not trained on
    code, _, err = run(capsys, "evaluate", "--model", "no-such-model", "--features", str(d))
    assert code == 2 and "unknown model 'no-such-model'" in err and "default" in err


def test_evaluate_input_mismatch_names_model_and_data_sides(tmp_path, capsys):
    """Another epoch shape: the model's training input and the night's, each on its side."""
    d = write_feature_dir(tmp_path / "toy", subjects=("81",))  # (n, 2, 3)
    code, _, err = run(capsys, "evaluate", "--model", "default", "--features", str(d))
    assert code == 2
    trained, given = err.strip().splitlines()[-1].split(", but this night has ")
    assert trained.endswith("the model was trained on input kind 'features', epoch shape "
                            "[3, 10]") and "81__1.npz" in trained
    assert given.startswith("input kind 'features', epoch shape [2, 3];")


def test_feature_count_error_states_both_inputs():
    """Same kind and epoch shape, other channel roles: the feature counts differ, and the
    message says which side has which (it printed the night's input for both)."""
    from hypnoscope.datasets import Night
    from hypnoscope.models import make_model

    rng = np.random.default_rng(0)

    def night(roles, nid):
        y = np.repeat(np.arange(5), 4)
        X = rng.standard_normal((len(y), 3, 1000)) * (5 + 10 * y[:, None, None])
        return Night(X=X, y=y, subject_id=nid, night_id=nid, kind="signals", sfreq=100.0,
                     channels=["C3", "C4", "X"], roles=roles)

    model = make_model("rf", seed=0)
    model.fit([night(["eeg", "eeg", "eog"], "a"), night(["eeg", "eeg", "eog"], "b")])
    n_model = len(model.feature_names_)
    with pytest.raises(ValueError) as exc:
        model.predict(night(["eeg", "eeg", "emg"], "c"))
    msg = str(exc.value)
    trained, given = msg.split(" but this night gives ")
    assert trained == (f"night c: the model was trained on {n_model} features (input kind "
                       "'signals', epoch shape [3, 1000], roles ['eeg', 'eeg', 'eog']),")
    n_night = int(given.split()[0])
    assert n_night != n_model
    assert given.startswith(f"{n_night} (input kind 'signals', epoch shape [3, 1000], roles "
                            "['eeg', 'eeg', 'emg'])")
    assert "missing" in given and "X_" in given


def test_evaluate_on_training_nights_warns(tmp_path, capsys, caplog, feature_dirs):
    """Nights of subjects (or the very nights) the model was trained on are named."""
    train, _ = feature_dirs
    model_path = tmp_path / "rf.joblib"
    assert run(capsys, "train", "--model", "rf", "--features", str(train), "--out",
               str(model_path))[0] == 0
    assert len(load_model(model_path).metadata["training_data"]["night_ids"]) == 6
    code, out, _ = run(capsys, "evaluate", "--model", str(model_path), "--features",
                       str(train), "--json")
    assert code == 0
    (notice,) = json.loads(out)["notices"]
    assert notice["code"] == "training-overlap" and notice["severity"] == "warning"
    assert notice["message"].startswith("6 of 6 evaluated nights overlap")
    assert "3 subject(s)" in notice["message"] and "6 of the very nights" in notice["message"]
    assert "not an estimate for people the model has not seen" in notice["message"]
    mixed = write_feature_dir(tmp_path / "mixed", subjects=("03", "07"), seed=5)
    for f in mixed.glob("03__*.npz"):  # same subject, other nights
        f.rename(mixed / f"03__{int(f.stem[-1]) + 2}.npz")
    caplog.clear()
    code, out, _ = run(capsys, "evaluate", "--model", str(model_path), "--features",
                       str(mixed))
    assert code == 0 and "accuracy" in out
    (msg,) = [r.getMessage() for r in caplog.records if "training data" in r.getMessage()]
    assert msg.startswith("2 of 4 evaluated nights") and "1 subject(s) it was trained on, " \
        "e.g. 03)" in msg and "very nights" not in msg
