"""ONNX export of every deep model in the registry (hypnoscope.models.onnx_model) and
staging an .onnx model with onnxruntime in a process where PyTorch cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from hypnoscope.models import MODEL_REGISTRY, make_model
from hypnoscope.models.deep import DeepStagingModel
from hypnoscope.models.onnx_model import OnnxStagingModel, export_onnx, load_onnx_model


def _is_deep(name: str) -> bool:
    m = make_model(name, n_classes=3)  # every model has a 3-class form (ssnet-hier only)
    return isinstance(m, DeepStagingModel) or any(
        isinstance(x, DeepStagingModel) for x in getattr(m, "members", []))


#: every registered deep model (a deep model added to the registry is tested here too)
DEEP_MODELS = [n for n in MODEL_REGISTRY if _is_deep(n)]
_MSMAE_TINY = {"pretrain_epochs": 1, "d_model": 16, "depth": 2, "n_heads": 2, "grid": 6,
               "scales": (1.0, 5.0),
               "decoder_filters": (16,)}
#: tiny settings of the models that have them; any other deep model trains 1 epoch
TINY = {"ssnet": {"seq_len": 8}, "ssnet-hier": {"seq_len": 8, "n_classes": 3},
        "msmae-cnn": _MSMAE_TINY, "msmae-cnn-rf": _MSMAE_TINY,
        "mc2sleepnet": {"seq_len": 8, "pretrain_epochs": 1}}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Four simulated Sleep-EDF pairs (44 epochs each): nights of 2 training, 1 validation
    and 1 test subject, loaded as the training command loads them."""
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.signal.nights import load_recording
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    root = tmp_path_factory.mktemp("onnx")
    stages = np.repeat([0, 1, 2, 3, 2, 4, 0, 2, 4, 0], [4, 3, 6, 6, 4, 5, 2, 5, 5, 4])
    nights, psgs = [], []
    for i, rid in enumerate(["SC4001E0", "SC4011E0", "SC4021E0", "SC4031E0"]):
        psg, hyp = write_sleepedf_pair(simulate_night(Hypnogram(stages), seed=i), None,
                                       root / "data", rid)
        psgs.append(psg)
        nights.append(load_recording(psg, hyp, cache=False, crop_wake_min=None))
    return {"root": root, "nights": nights, "psgs": psgs}


@pytest.fixture(scope="module")
def fitted(sim):
    """``name -> fitted model`` (1 epoch, tiny sizes), trained lazily per test."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            kw = {"epochs": 1, "seed": 0, "device": "cpu", "num_threads": 1,
                  **TINY.get(name, {})}
            n = sim["nights"]
            cache[name] = make_model(name, **kw).fit(n[:2], n[2:3])
        return cache[name]
    return get


def test_registry_has_the_deep_models():
    assert {"ssnet", "ssnet-hier", "msmae-cnn", "msmae-cnn-rf", "cnn"} <= set(DEEP_MODELS)
    assert "lightgbm-context" not in DEEP_MODELS


@pytest.mark.parametrize("name", DEEP_MODELS)
def test_onnx_probabilities_equal_pytorch(name, sim, fitted, tmp_path):
    model = fitted(name)
    out = tmp_path / f"{name}.onnx"
    if getattr(model, "members", None) is not None:
        # an ensemble with a non-network member is refused with a message, and its deep
        # member exported alone
        with pytest.raises(ValueError, match="soft-voting ensemble.*member="):
            export_onnx(model, out)
        assert not out.exists()
        i = next(k for k, m in enumerate(model.members) if isinstance(m, DeepStagingModel))
        export_onnx(model, out, member=i)
        model = model.members[i]
    else:
        export_onnx(model, out)
    onnx_model = load_onnx_model(out)
    night = sim["nights"][3]
    p_torch = model.predict_proba(night)
    p_onnx = onnx_model.predict_proba(night)
    assert p_onnx.shape == p_torch.shape == (night.n_epochs, model.n_classes)
    assert np.abs(p_onnx - p_torch).max() < 1e-4
    np.testing.assert_array_equal(onnx_model.predict(night), model.predict(night))
    # what staging needs travels in the file
    d = onnx_model.description
    assert d["classes"] == list(model.classes) and d["name"] == model.name
    assert d["config"]["seq_len"] == model.config["seq_len"]
    assert d["config"]["normalize"] == model.config["normalize"]
    assert d["input_views"] == model.input_views
    assert onnx_model.metadata["channels"] == model.metadata["channels"]
    assert onnx_model.metadata["training_data"]["sfreq"] == 100.0


def test_export_refuses_feature_models_and_bad_files(tmp_path, sim):
    from hypnoscope.models.storage import load_staging_model

    with pytest.raises(ValueError, match="not a deep"):
        export_onnx(load_staging_model("default")[0], tmp_path / "d.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        load_onnx_model(bad)


BLOCK_TORCH = textwrap.dedent('''
    import sys

    class _NoTorch:
        """Meta-path finder: PyTorch is not installed here."""
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, _NoTorch())
''')


def test_stage_onnx_model_without_pytorch(sim, fitted, tmp_path):
    """``hypnoscope stage --model x.onnx`` in a subprocess that cannot import torch stages
    the night as the PyTorch model does (probabilities within 1e-4)."""
    from hypnoscope.cli import main
    from hypnoscope.staging.outputs import output_names
    from hypnoscope.staging.pipeline import stage_recording

    model = fitted("ssnet")
    joblib_path = model.save(tmp_path / "ssnet.joblib")
    onnx_path = tmp_path / "ssnet.onnx"
    assert main(["export", "--model", str(joblib_path), "--onnx", str(onnx_path)]) == 0
    assert main(["export", "--model", str(joblib_path), "--onnx",
                 str(tmp_path / "x.txt")]) == 2
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MPLBACKEND": "Agg", "HYPNOSCOPE_PROGRESS": "0"}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env,
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked by the test" in probe.stderr
    psg = sim["psgs"][3]
    run = subprocess.run([sys.executable, "-m", "hypnoscope", "stage", str(psg), "--model",
                          str(onnx_path), "--out", str(tmp_path / "staged")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    tsv = tmp_path / "staged" / output_names("SC4031E0")["tsv"]
    got = pd.read_csv(tsv, sep="\t")
    want = stage_recording(psg, model=model).hypnogram
    cols = [f"p_{c}" for c in model.classes]
    assert np.abs(got[cols].to_numpy() - want.probabilities).max() < 1e-4
    assert list(got["stage"]) == list(want.labels)
    assert (got["stage"] != "?").sum() > 30  # staged, not unscored


def test_onnx_model_is_a_windowed_model_without_torch_state(sim, fitted, tmp_path):
    """The onnxruntime model reads windows through the same NumPy path; several tasks
    (ssnet-hier) are merged by the rule stored in the file."""
    model = fitted("ssnet-hier")
    om = load_onnx_model(export_onnx(model, tmp_path / "h.onnx"))
    assert isinstance(om, OnnxStagingModel) and om.task_merge() == "hierarchical"
    assert sorted(om.nets) == ["rem_nrem", "wake_sleep"]
    p = om.predict_proba(sim["nights"][3])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_cli_export_of_an_ensemble_names_the_member_option(fitted, tmp_path, capsys):
    from hypnoscope.cli import main

    path = fitted("msmae-cnn-rf").save(tmp_path / "ens.joblib")
    out = tmp_path / "ens.onnx"
    assert main(["export", "--model", str(path), "--onnx", str(out)]) == 2
    err = capsys.readouterr().err
    assert "soft-voting ensemble of ['msmae-cnn', 'rf']" in err and "--member" in err
    assert main(["export", "--model", str(path), "--onnx", str(out), "--member", "5"]) == 2
    assert "member 5 does not exist" in capsys.readouterr().err
    assert not out.exists()
