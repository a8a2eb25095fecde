"""Stagers from elsewhere: YASA as a model (``--model yasa``), plug-ins through the
entry-point group ``hypnoscope.stagers``, and the consensus (``--model consensus``).

A simulated 30-min AASM night (F4-M1, C4-M1, O2-M1, E1-M2, E2-M2, chin EMG at 256 Hz)
is staged by hypnoscope and compared with YASA called directly on the same channels;
two plug-in stagers defined here are installed as a temporary distribution (a dist-info
folder with an ``entry_points.txt`` on ``sys.path``) and found through
:mod:`importlib.metadata`.
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypnoscope.cli import main
from hypnoscope.io.psg import read_psg
from hypnoscope.models.consensus import parse_weights, soft_vote
from hypnoscope.models.plugins import STAGER_GROUP, load_stager, plugin_entry_points
from hypnoscope.models.storage import load_staging_model
from hypnoscope.stages import STAGES_5, UNSCORED
from hypnoscope.staging.pipeline import stage_recording

yasa = pytest.importorskip("yasa")

EEG, EOG, EMG = "C4-M1", "E1-M2", "Chin1-Chin2"
#: A short night: wake, N1, N2, N3, N2, REM, wake (60 epochs of 30 s).
CODES = [0] * 6 + [1] * 4 + [2] * 14 + [3] * 12 + [2] * 8 + [4] * 10 + [0] * 6
#: Epochs whose EOG is made flat in the plug-in night.
FLAT_EOG = range(20, 24)


def _write(raw, folder: Path, record_id: str) -> Path:
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import write_sleepedf_pair

    psg, _ = write_sleepedf_pair(raw, Hypnogram(np.array(CODES), epoch_sec=30.0), folder,
                                 record_id)
    return psg


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Path:
    """The simulated AASM night as an EDF file."""
    from hypnoscope.simulate import simulate_night

    raw = simulate_night(np.array(CODES), seed=3, mode="telemetry", sfreq=256.0,
                         montage="aasm")
    return _write(raw, tmp_path_factory.mktemp("peers"), "ST7001J0")


def _yasa_direct(path: Path, float32: bool = False):
    """YASA's SleepStaging on the file's C4-M1, E1-M2 and chin EMG, as a user calls it
    (``float32``: the samples rounded to float32 µV first, as hypnoscope stores them)."""
    import mne

    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    if float32:
        raw._data = (raw._data * 1e6).astype(np.float32).astype(np.float64) * 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return yasa.SleepStaging(raw, eeg_name=EEG, eog_name=EOG, emg_name=EMG).predict()


def _yasa_codes(hyp) -> np.ndarray:
    return np.array([{"WAKE": 0, "N1": 1, "N2": 2, "N3": 3, "REM": 4}[str(s)]
                     for s in hyp.hypno])


def test_stage_model_yasa_equals_yasa_called_directly(night, tmp_path, capsys, caplog):
    out = tmp_path / "out"
    assert main(["stage", str(night), "--model", "yasa", "--out", str(out)]) == 0
    tsv = pd.read_csv(out / "ST7001J0.hypnogram.tsv", sep="\t")
    with caplog.at_level(logging.INFO, logger="yasa"):
        direct = _yasa_direct(night)
    expected = [STAGES_5[c] for c in _yasa_codes(direct)]
    assert len(tsv) == len(CODES) == len(expected)
    assert tsv["stage"].tolist() == expected
    # the report names YASA's version, its classifier file (the one YASA itself loads for
    # EEG + EOG + EMG) and its licence
    card = json.loads((out / "ST7001J0.report.json").read_text())["model"]
    used = [r.getMessage() for r in caplog.records if "pre-trained classifier" in
            r.getMessage()]
    assert used and card["classifier"] == Path(used[-1].split(": ", 1)[1]).name
    assert card["version"] == f"yasa {yasa.__version__}"
    assert "BSD-3-Clause" in card["license"] and card["name"] == "yasa"
    # probabilities: YASA's, in hypnoscope's stage order, on the same float32 samples
    res = stage_recording(str(night), model="yasa")
    ref = _yasa_direct(night, float32=True).proba[["WAKE", "N1", "N2", "N3", "REM"]]
    np.testing.assert_allclose(res.hypnogram.probabilities, ref.to_numpy(), atol=1e-9)
    assert res.info["channels"] == {EEG: "eeg", EOG: "eog", EMG: "emg"}
    assert res.info["input"] == "recording"


def test_yasa_refuses_a_low_rate_in_one_line(night, tmp_path):
    import mne

    raw = mne.io.read_raw_edf(night, preload=True, verbose="error").resample(64.0)
    low = _write(raw, tmp_path, "ST7002J0")
    with pytest.raises(ValueError) as exc:
        stage_recording(str(low), model="yasa")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(low))
    assert "Sampling frequency must be at least 80 Hz" in msg and "64 Hz" in msg


def test_missing_yasa_names_the_extra_in_one_line(night, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "yasa", None)  # `import yasa` fails as if absent
    code = main(["stage", str(night), "--model", "yasa", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "pip install 'hypnoscope[peers]'" in err and "yasa" in err
    assert not (tmp_path / "o" / "ST7001J0.hypnogram.tsv").exists()


# ------------------------------------------------------------------ plug-ins
PLUGIN_MODULE = '''
import numpy as np

SEEN = []


class ConstantStager:
    """The same probabilities for every epoch, from one EEG channel."""

    name = "constant"
    channels = {"eeg": (1, 1)}
    card = {"summary": "a constant stager of the test suite", "version": "0.1"}

    def predict_proba(self, recording):
        SEEN.append(recording)
        n = recording.n_samples // int(round(30 * recording.sfreq))
        return np.tile([0.1, 0.1, 0.6, 0.1, 0.1], (n, 1))


def eog_amplitude_proba(data, sfreq):
    """Per epoch: wake grows with the EOG's SD (µV)."""
    spe = int(round(30 * sfreq))
    sd = data[: data.size // spe * spe].reshape(-1, spe).std(axis=1)
    p = np.column_stack([sd / 10.0, np.ones_like(sd), np.full_like(sd, 2.0),
                         np.ones_like(sd), np.full_like(sd, 0.5)])
    return p / p.sum(axis=1, keepdims=True)


class AmplitudeStager:
    name = "amplitude"
    channels = {"eog": (1, 1)}

    def predict_proba(self, recording):
        return eog_amplitude_proba(recording.data[0].astype(np.float64), recording.sfreq)


def make_amplitude():
    return AmplitudeStager()


class NotAStager:
    channels = {"eeg": 1}
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Two stagers installed as a distribution with entry points in the group
    ``hypnoscope.stagers``: ``test-constant`` (a class) and ``test-amplitude`` (a
    factory)."""
    root = tmp_path / "site"
    dist = root / "peers_test_stagers-0.1.dist-info"
    dist.mkdir(parents=True)
    (root / "peers_test_stagers.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: peers-test-stagers\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{STAGER_GROUP}]\ntest-constant = peers_test_stagers:ConstantStager\n"
        "test-amplitude = peers_test_stagers:make_amplitude\n"
        "test-broken = peers_test_stagers:NotAStager\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "peers_test_stagers", raising=False)
    yield root
    sys.modules.pop("peers_test_stagers", None)


@pytest.fixture(scope="module")
def flat_eog_night(tmp_path_factory) -> Path:
    """The AASM night with its E1-M2 flat over :data:`FLAT_EOG`."""
    import mne

    from hypnoscope.simulate import simulate_night

    raw = simulate_night(np.array(CODES), seed=3, mode="telemetry", sfreq=256.0,
                         montage="aasm")
    spe = int(30 * raw.info["sfreq"])
    i = raw.ch_names.index(EOG)
    data = raw.get_data()
    data[i, FLAT_EOG.start * spe:FLAT_EOG.stop * spe] = 0.0
    raw = mne.io.RawArray(data, raw.info, verbose=False).set_annotations(raw.annotations)
    return _write(raw, tmp_path_factory.mktemp("flat"), "ST7003J0")


def test_plugin_stager_is_found_through_its_entry_point(plugins, night):
    eps = plugin_entry_points()
    assert eps["test-constant"].value == "peers_test_stagers:ConstantStager"
    assert eps["test-amplitude"].group == STAGER_GROUP
    stager, card = load_staging_model("test-constant")
    assert type(stager).__module__ == "peers_test_stagers" and card["name"] == "test-constant"
    res = stage_recording(str(night), model="test-constant")
    hyp = res.hypnogram
    assert (hyp.codes == 2).all()
    np.testing.assert_allclose(hyp.probabilities, np.tile([0.1, 0.1, 0.6, 0.1, 0.1],
                                                          (len(CODES), 1)))
    assert res.info["model"]["version"] == "0.1"
    # the stager got the first EEG channel in µV at the file's rate, as read
    seen = sys.modules["peers_test_stagers"].SEEN[-1]
    rec = read_psg(night, sfreq=256.0)
    assert seen.ch_names == ["F4-M1"] and seen.sfreq == 256.0
    np.testing.assert_array_equal(seen.data[0], rec.data[rec.ch_names.index("F4-M1")])
    assert load_stager("test-amplitude").name == "test-amplitude"  # a factory
    with pytest.raises(TypeError, match=r"plug-in 'test-broken' \(peers_test_stagers:NotAStager"
                       r".*no predict_proba.*channels must map"):
        load_stager("test-broken")


def test_models_lists_the_stagers_installed(plugins, capsys):
    assert main(["models", "--json"]) == 0
    stagers = json.loads(capsys.readouterr().out)["stagers"]
    assert {"yasa", "consensus"} <= set(stagers)
    assert stagers["test-constant"] == ("plug-in peers_test_stagers:ConstantStager "
                                        "(peers-test-stagers 0.1)")


def test_consensus_is_the_weighted_mean_and_keeps_unscored_epochs(plugins, flat_eog_night):
    spec = "consensus:test-constant=1,test-amplitude=3"
    cons = stage_recording(str(flat_eog_night), model=spec)
    alone = {m: stage_recording(str(flat_eog_night), model=m).hypnogram
             for m in ("test-constant", "test-amplitude")}
    hyp = cons.hypnogram
    # an epoch unscored for either member (its channels flagged) stays unscored
    unscored = (alone["test-constant"].codes == UNSCORED) | (
        alone["test-amplitude"].codes == UNSCORED)
    assert set(FLAT_EOG) <= set(np.flatnonzero(unscored))
    np.testing.assert_array_equal(hyp.codes == UNSCORED, unscored)
    assert (hyp.probabilities[unscored] == 0).all()
    # every scored epoch: (1 p_constant + 3 p_amplitude) / 4, the amplitude stager's
    # probabilities those of its formula on the EOG as read
    rec = read_psg(flat_eog_night, sfreq=256.0)
    amp = sys.modules["peers_test_stagers"].eog_amplitude_proba(
        rec.data[rec.ch_names.index(EOG)].astype(np.float64), 256.0)
    const = np.tile([0.1, 0.1, 0.6, 0.1, 0.1], (len(CODES), 1))
    expected = (1 * const + 3 * amp) / 4
    np.testing.assert_allclose(hyp.probabilities[~unscored], expected[~unscored], atol=1e-6)
    np.testing.assert_array_equal(hyp.codes[~unscored], expected[~unscored].argmax(axis=1))
    model = cons.info["model"]
    assert model["weights"] == {"test-constant": 0.25, "test-amplitude": 0.75}
    assert cons.info["channels"] == {"F4-M1": "eeg", EOG: "eog"}


def test_consensus_default_members_have_equal_weights(plugins, night, monkeypatch):
    monkeypatch.setitem(sys.modules, "yasa", None)  # YASA absent: left out, said why
    res = stage_recording(str(night), model="consensus")
    model = res.info["model"]
    assert set(model["weights"]) == {"auto", "test-constant", "test-amplitude"}
    np.testing.assert_allclose(list(model["weights"].values()), [1 / 3] * 3, atol=1e-6)
    assert model["members"]["auto"].startswith("shipped model 'default'")
    left = {n.message.split("'")[1]: n for n in res.notices if n.code == "consensus-member"}
    assert set(left) == {"yasa", "test-broken"}
    assert "hypnoscope[peers]" in left["yasa"].message
    assert "not a hypnoscope stager" in left["test-broken"].message
    assert {n.severity for n in left.values()} == {"info"}  # not named: info


def test_soft_vote_and_weight_spec():
    a, b = np.array([[0.2, 0.8], [1.0, 0.0]]), np.array([[0.6, 0.4], [0.0, 1.0]])
    np.testing.assert_allclose(soft_vote([a, b], [1, 3]), (a + 3 * b) / 4)
    assert parse_weights("auto=1, yasa=2,my") == {"auto": 1.0, "yasa": 2.0, "my": 1.0}
    for bad in ("auto=x", "auto=-1", "auto=0"):
        with pytest.raises(ValueError, match="consensus"):
            parse_weights(bad)



def test_a_member_of_the_consensus_stages_as_it_does_alone(tmp_path):
    """``consensus:auto=1`` is the shipped model chosen for the channels, staged as alone:
    on a 100-Hz night with an hour of wake either side of sleep its second pass over the
    sleep period +-30 min is run too, and the probabilities are the same."""
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    codes = np.array([0] * 120 + [1] * 4 + [2] * 30 + [3] * 20 + [2] * 10 + [4] * 16
                     + [0] * 120)
    raw = simulate_night(codes, seed=5, mode="telemetry", sfreq=100.0)
    psg, _ = write_sleepedf_pair(raw, Hypnogram(codes), tmp_path, "ST7004J0")
    alone = stage_recording(str(psg), model="auto")
    cons = stage_recording(str(psg), model="consensus:auto=1")
    window = alone.info["normalization_window_epochs"]
    assert 0 < window[0] < window[1] < len(codes)  # the second pass ran on a shorter window
    np.testing.assert_allclose(cons.hypnogram.probabilities, alone.hypnogram.probabilities,
                               atol=1e-9)
    assert cons.info["model"]["members"] == {
        "auto": f"shipped model {alone.info['model']['name']!r}, chosen for the channels"}
