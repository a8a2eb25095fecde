"""Issue #29: ``hypnoscope evaluate``'s classification report and the MSMAE-CNN
baseline-wander high-pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.cli import main

# a constructed night: true stages and the predictions of a stub model
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4])
Y_PRED = np.array([0, 0, 0, 1, 0, 1, 2, 2, 2, 2, 2, 2, 4, 4])
# W: TP 3 FP 1 FN 1; N1: TP 1 FP 1 FN 1; N2: TP 4 FP 2 FN 0; N3: TP 0 FP 0 FN 2 (never
# predicted: precision undefined); R: TP 2 FP 0 FN 0
EXPECTED = {"W": (0.75, 0.75, 0.75, 4), "N1": (0.5, 0.5, 0.5, 2), "N2": (4 / 6, 1.0, 0.8, 4),
            "N3": (None, 0.0, 0.0, 2), "R": (1.0, 1.0, 1.0, 2)}


class _StubModel:
    name = "stub"
    n_classes = 5
    metadata: dict = {}

    def predict(self, night) -> np.ndarray:
        assert len(night.y) == len(Y_PRED)
        return Y_PRED.copy()


def _evaluate(tmp_path: Path, capsys, monkeypatch, *extra: str) -> str:
    import hypnoscope.models.storage as storage

    d = tmp_path / "feat"
    d.mkdir()
    X = np.random.default_rng(0).standard_normal((len(Y_TRUE), 2, 3)).astype(np.float32)
    np.savez(d / "01__1.npz", features=X, labels=Y_TRUE, onsets_sec=np.arange(14) * 30.0)
    monkeypatch.setattr(storage, "load_staging_model", lambda name: (_StubModel(), None))
    code = main(["evaluate", "--model", "stub", "--features", str(d), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_evaluate_json_reports_precision_recall_support(tmp_path, capsys, monkeypatch):
    out = json.loads(_evaluate(tmp_path, capsys, monkeypatch, "--json"))
    for stage, (prec, rec, f1, support) in EXPECTED.items():
        row = out["per_class"][stage]
        assert row["precision"] == (None if prec is None else pytest.approx(prec))
        assert out["precision"][stage] == row["precision"]
        assert row["recall"] == pytest.approx(rec) == out["recall"][stage]
        assert row["f1"] == pytest.approx(f1) == out["per_class_f1"][stage]
        assert row["support"] == support == out["support"][stage]
    # macro averages leave the undefined N3 precision out
    assert out["macro_precision"] == pytest.approx((0.75 + 0.5 + 4 / 6 + 1.0) / 4)
    assert out["macro_recall"] == pytest.approx((0.75 + 0.5 + 1.0 + 0.0 + 1.0) / 5)
    assert out["n_epochs"] == 14


def test_evaluate_text_prints_the_classification_report(tmp_path, capsys, monkeypatch):
    lines = _evaluate(tmp_path, capsys, monkeypatch).splitlines()
    start = lines.index("classification report")
    assert lines[start + 1].split() == ["stage", "precision", "recall", "F1", "support"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[start + 2: start + 7]}
    assert rows["W"] == ["0.750", "0.750", "0.750", "4"]
    assert rows["N1"] == ["0.500", "0.500", "0.500", "2"]
    assert rows["N2"] == ["0.667", "1.000", "0.800", "4"]
    assert rows["N3"] == ["n/a", "0.000", "0.000", "2"]
    assert rows["R"] == ["1.000", "1.000", "1.000", "2"]
    macro = lines[start + 7].split()
    assert macro[:2] == ["macro", "avg"] and macro[-1] == "14"
    assert float(macro[2]) == pytest.approx((0.75 + 0.5 + 4 / 6 + 1.0) / 4, abs=5e-4)
    assert float(macro[3]) == pytest.approx(0.65, abs=5e-4)


# -- MSMAE-CNN baseline-wander high-pass ---------------------------------------------------

FS = 100.0


def _amplitude(x: np.ndarray, freq: float) -> float:
    """Amplitude of the ``freq`` sinusoid in ``x`` (an integer number of periods)."""
    t = np.arange(x.size) / FS
    return 2 * abs(np.mean(x * np.exp(-2j * np.pi * freq * t)))


def _night(seconds: float = 600.0) -> tuple[np.ndarray, np.ndarray]:
    """(signal, drift): a 5-Hz and a 10-Hz sinusoid on a constant offset plus slow drift."""
    t = np.arange(int(seconds * FS)) / FS
    drift = 3.0 + 2.0 * np.sin(2 * np.pi * 0.02 * t + 0.4) + 0.5 * t / seconds
    return np.sin(2 * np.pi * 5.0 * t) + 0.5 * np.sin(2 * np.pi * 10.0 * t) + drift, drift


def test_kaiser_highpass_removes_offset_and_drift_keeps_10_hz():
    from hypnoscope.signal.filters import kaiser_highpass

    x, drift = _night()
    y = kaiser_highpass(x, FS)  # 0.5 Hz, 60 dB
    inner = slice(int(10 * FS), -int(10 * FS))  # away from the edge transients
    # offset 3.0: what is left is its 60-dB stop-band attenuation (3e-3)
    assert abs(y.mean()) < 0.01 and abs(y[inner].mean()) < 0.005
    clean = x - drift
    # the residual drift has under 1e-4 of the drift's power
    assert np.mean((y[inner] - clean[inner]) ** 2) < 1e-4 * np.mean(drift ** 2)
    assert _amplitude(y, 10.0) == pytest.approx(0.5, rel=0.01)
    assert _amplitude(y, 5.0) == pytest.approx(1.0, rel=0.01)


def test_msmae_preset_highpass_on_by_default_and_off_reproduces_old_output():
    from hypnoscope.io.psg import PSGRecording
    from hypnoscope.signal.filters import kaiser_lowpass
    from hypnoscope.signal.preprocessing import PRESETS, Pipeline, resolve_config

    assert resolve_config("msmae-cnn")["lowpass"]["highpass"] == 0.5
    x, drift = _night()
    data = np.stack([x, 2 * x, x])
    roles = ["eeg", "eog", "emg_envelope"]
    on = Pipeline("msmae-cnn").apply(data, FS, roles)
    off_cfg = {**PRESETS["msmae-cnn"],
               "lowpass": {**PRESETS["msmae-cnn"]["lowpass"], "highpass": None}}
    off = Pipeline(off_cfg).apply(data, FS, roles)
    # off: exactly the low-pass alone (the output before the option existed)
    np.testing.assert_array_equal(off[:2], kaiser_lowpass(data[:2], FS, 10.0, 60.0))
    legacy = {**PRESETS["msmae-cnn"], "lowpass": {"cutoff": 10.0, "attenuation_db": 60.0}}
    np.testing.assert_array_equal(Pipeline(legacy).apply(data, FS, roles), off)
    np.testing.assert_array_equal(on[2], data[2])  # an envelope is never filtered
    inner = slice(int(10 * FS), -int(10 * FS))
    assert abs(off[0, inner].mean()) > 2.5 and abs(on[0, inner].mean()) < 0.005
    assert np.mean((on[0, inner] - (off[0, inner] - drift[inner])) ** 2) < 1e-3
    # the pass band is untouched: 5 Hz (and the 10-Hz cut-off's 6-dB point) as without it
    for freq in (5.0, 10.0):
        assert _amplitude(on[1], freq) == pytest.approx(_amplitude(off[1], freq), rel=0.01)
    # recorded with the recording (a model's training_data keeps this config)
    rec = PSGRecording(data=data.astype(np.float32), ch_names=["C3", "E1", "env"], roles=roles,
                       sfreq=FS)
    assert Pipeline("msmae-cnn")(rec).meta["preprocessing"]["config"]["lowpass"]["highpass"] \
        == 0.5


def test_train_highpass_option():
    from argparse import Namespace

    from hypnoscope.cli import CLIError
    from hypnoscope.cli.train import _lowpass_preprocessing

    def cfg(**kw):
        args = Namespace(model="msmae-cnn", lowpass=None, highpass=None, features=None)
        for k, v in kw.items():
            setattr(args, k, v)
        return _lowpass_preprocessing(args)["lowpass"]

    assert cfg() == {"cutoff": 10.0, "attenuation_db": 60.0, "highpass": 0.5}
    assert cfg(highpass=0.0)["highpass"] is None
    assert cfg(highpass=0.3, lowpass=30.0) == {"cutoff": 30.0, "attenuation_db": 60.0,
                                                "highpass": 0.3}
    with pytest.raises(CLIError, match="--highpass must be a positive cut-off"):
        cfg(highpass=-1.0)
