"""Live staging (hypnoscope.live.stream): the causal pipeline, and an LSL stream replayed over
loopback staged exactly as the causal model stages the recording offline."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pandas as pd
import pytest

from hypnoscope.live.stream import (
    CausalBandPower,
    ReplayOutlet,
    StreamingStager,
    hypnogram_strip,
    stage_causal,
    stream_lsl,
)
from hypnoscope.signal.bandpower import BandPowerNight

T = 3000  # samples per 30-s epoch at 100 Hz


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A simulated 90-min night (180 epochs) in the Sleep-EDF layout, and its signals."""
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.io.psg import read_psg
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    stages = np.repeat([0, 1, 2, 3, 2, 4, 0, 2, 3, 4, 0],
                       [10, 5, 20, 30, 15, 20, 5, 25, 20, 20, 10])
    psg, _ = write_sleepedf_pair(simulate_night(Hypnogram(stages), seed=3), None,
                                 tmp_path_factory.mktemp("stream"), "SC4001E0")
    rec = read_psg(psg, sfreq=100.0, include_emg=False)
    return {"psg": psg, "rec": rec, "truth": stages}


@pytest.fixture(scope="module")
def offline(night):
    """``k -> stage_causal(night, lookahead=k)``, computed once per k."""
    cache: dict[int, list] = {}

    def get(k: int):
        if k not in cache:
            cache[k] = stage_causal(night["psg"], lookahead=k)
        return cache[k]
    return get


def _chunks(x: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    a = 0
    while a < x.shape[1]:
        n = int(rng.integers(1, 700))
        yield x[:, a:a + n]
        a += n


def _staged(stager: StreamingStager, x: np.ndarray, seed: int):
    out = []
    for c in _chunks(x, seed):
        out += stager.push(c)
    return out + stager.finish()


def test_causal_spectra_do_not_depend_on_how_the_stream_is_cut(night):
    rec = night["rec"]
    x = rec.data[:3, : 20 * T + 1234]
    roles = ["eeg", "eeg", "eog"]
    whole = CausalBandPower(roles, ["a", "b", "c"])
    whole.push(x)
    whole.finish()
    cut = CausalBandPower(roles, ["a", "b", "c"])
    for c in _chunks(x, 1):
        cut.push(c)
    cut.finish()
    a, b = whole.night(), cut.night()
    assert a.n_epochs == b.n_epochs == 20  # the incomplete 21st epoch is dropped
    for f in ("band_powers", "sums", "sq_sums", "peak_to_peak"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))  # bit for bit
    with pytest.raises(RuntimeError, match="finished"):
        whole.push(x[:, :10])


def test_causal_band_pass_is_the_offline_filter_delayed(night):
    """Away from the edges, the causal FIR with its delay compensated gives the offline
    zero-phase band powers."""
    from hypnoscope.signal.bandpower import extract_bandpower

    x = night["rec"].data[:3, : 40 * T]
    roles = ["eeg", "eeg", "eog"]
    live = CausalBandPower(roles, ["a", "b", "c"])
    live.push(x)
    live.finish()
    off = extract_bandpower(x, 100.0, ["a", "b", "c"], roles, ica=False)
    mid = slice(2, 38)
    np.testing.assert_allclose(live.night().band_powers[mid], off.band_powers[mid],
                               rtol=1e-6)


@pytest.mark.parametrize("k", [0, 2])
def test_epoch_t_reads_no_data_after_epoch_t_plus_k(night, k):
    """Ten times the amplitude after epoch c + k (past the filter delay) changes nothing
    up to epoch c: the z-score is a running statistic and context windows stop at
    t + k. Offline (whole-night z-score) the same change moves epoch c's features."""
    x = night["rec"].data[:3, : 100 * T]
    c = 60
    cut = (c + k + 1) * T + CausalBandPower(["eeg"], ["a"]).delay
    loud = x.copy()
    loud[:, cut:] *= 10.0
    names = list(night["rec"].ch_names)
    a = _staged(StreamingStager(names, lookahead=k), x, 0)
    b = _staged(StreamingStager(names, lookahead=k), loud, 1)
    pa, pb = (np.array([r.proba for r in res]) for res in (a, b))
    np.testing.assert_array_equal(pa[: c + 1], pb[: c + 1])
    assert [r.data_epochs for r in a[: c + 1]] == [t + k + 1 for t in range(c + 1)]
    assert np.abs(pa[c + k + 2:] - pb[c + k + 2:]).max() > 0.05  # the change is seen later
    # offline, non-causal normalisation: the future rescales epoch c's features
    sa, sb = (StreamingStager(names, lookahead=k) for _ in range(2))
    sa.push(x), sa.finish(), sb.push(loud), sb.finish()
    fa, fb = (BandPowerNight.features(s.spectra.night()) for s in (sa, sb))
    assert np.abs(fa[c] - fb[c]).max() > 0.5


def test_streamed_in_chunks_equals_offline_causal_staging(night, offline):
    """However the samples arrive, the stages and probabilities are those of
    :func:`stage_causal`; with look-ahead the agreement with the truth does not drop."""
    names = list(night["rec"].ch_names)
    k = 2
    live = _staged(StreamingStager(names, lookahead=k), night["rec"].data, 7)
    assert len(offline(k)) == len(live) == len(night["truth"])
    np.testing.assert_array_equal([r.proba for r in offline(k)], [r.proba for r in live])
    acc = {k: np.mean([r.code for r in offline(k)] == night["truth"]) for k in (0, 2)}
    # one 180-epoch night's difference is noise of about +-0.03-0.05 (simulation seeds 3-8:
    # k=2 minus k=0 has mean -0.006 and range -0.055..+0.033); 0.04 = 7 epochs
    assert acc[0] > 0.6 and acc[2] >= acc[0] - 0.04, acc


def test_lsl_loopback_replay_equals_offline_causal_staging(night, offline, tmp_path):
    """A simulated night replayed over LSL at 600x and staged live: every epoch, the
    same stages and probabilities as offline (look-ahead 0); the TSV has one complete
    line per epoch and listeners get the stages as LSL markers."""
    from mne_lsl.lsl import StreamInlet, resolve_streams

    name = f"hypnoscope-test-loopback-{os.getpid()}"  # unique: other runs share the network
    markers: list[dict] = []

    def listen() -> None:
        found = resolve_streams(timeout=20, name=f"{name}-stages")
        inlet = StreamInlet(found[0])
        inlet.open_stream(timeout=5)
        while not markers or markers[-1]["epoch"] < 179:  # until the last epoch
            sample, _ = inlet.pull_sample(timeout=5)
            if sample is None or not len(sample):
                break
            markers.append(json.loads(sample[0]))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    # 600x: 9 s of streaming, so the listener (which resolves the marker outlet once it
    # appears, about 1 s) connects well before the last epoch
    replay = ReplayOutlet(night["psg"], name=name, speed=600)
    replay.start()
    seen: list[int] = []
    summary = stream_lsl(name, lookahead=0, out_dir=tmp_path, idle_timeout=1.5,
                         on_epoch=lambda r: seen.append(r.epoch))
    replay.join()
    listener.join(timeout=15)
    assert replay.error is None and replay.samples_sent == night["rec"].n_samples
    off = offline(0)
    res = summary.results
    assert seen == list(range(len(off))) == [r.epoch for r in res]
    assert [r.stage for r in res] == [r.stage for r in off]
    np.testing.assert_array_equal([r.proba for r in res], [r.proba for r in off])
    assert all(r.latency_sec >= 0 and r.extra["compute_sec"] > 0 for r in res)
    lines = summary.path.read_text().splitlines()
    assert len(lines) == len(off) + 1 and all(line.count("\t") == 10 for line in lines)
    tsv = pd.read_csv(summary.path, sep="\t")
    assert list(tsv["stage"]) == [r.stage for r in off]
    np.testing.assert_allclose(tsv[["p_W", "p_N1", "p_N2", "p_N3", "p_R"]],
                               [r.proba for r in off], atol=1e-5)
    # the listener connects once the outlet appears, then gets every epoch
    assert len(markers) > 100 and markers[-1]["epoch"] == 179
    assert [m["epoch"] for m in markers] == list(range(180 - len(markers), 180))
    for m in markers:
        assert m["stage"] == off[m["epoch"]].stage
        assert abs(m["proba"][m["stage"]] - off[m["epoch"]].confidence) < 1e-5


def test_cli_stream_replay_with_lookahead(night, offline, tmp_path, capsys):
    from hypnoscope.cli import main

    name = f"hypnoscope-test-cli-{os.getpid()}"
    code = main(["stream", "--lsl", name, "--replay", str(night["psg"]),
                 "--speed", "3000", "--lookahead", "1", "--out", str(tmp_path),
                 "--idle-timeout", "1.5", "--no-markers"])
    err = capsys.readouterr()
    assert code == 0, err.err
    assert "Staged 180 epochs" in err.out and "epoch  179" in err.err
    tsv = pd.read_csv(tmp_path / f"{name}.stages.tsv", sep="\t")
    off = offline(1)
    assert list(tsv["stage"]) == [r.stage for r in off]
    assert list(tsv["data_epochs"][:3]) == [2, 3, 4] and tsv["data_epochs"].iloc[-1] == 180
    # an earlier session's stages are never overwritten
    before = (tmp_path / f"{name}.stages.tsv").read_bytes()
    assert main(["stream", "--lsl", name, "--out", str(tmp_path)]) == 2
    assert "exists (an earlier session" in capsys.readouterr().err
    assert (tmp_path / f"{name}.stages.tsv").read_bytes() == before


def test_stream_errors(tmp_path, capsys):
    from hypnoscope.cli import main

    assert main(["stream", "--lsl", "no-such-stream-here", "--resolve-timeout", "0.5"]) == 2
    assert "no LSL stream named 'no-such-stream-here'" in capsys.readouterr().err
    assert main(["stream", "--lsl", "x", "--lookahead", "-1"]) == 2
    with pytest.raises(ValueError, match="two EEG channels"):
        StreamingStager(["C3", "C4", "ECG"])
    assert hypnogram_strip(["W", "N1", "N2", "N3", "R", "?"]) == "W123R?"


def test_causal_ssnet_exported_to_onnx_streams_like_its_pytorch_form(night, tmp_path):
    """A causal SSNet trained on band powers (``hypnoscope train --features``), exported
    to ONNX, stages a stream without PyTorch: chunked live staging with look-ahead 1
    equals the PyTorch model's (stages; probabilities within 1e-4)."""
    from hypnoscope.datasets import Night
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.io.psg import read_psg
    from hypnoscope.models import make_model
    from hypnoscope.models.onnx_model import export_onnx
    from hypnoscope.signal.bandpower import CHANNEL_LAYOUT, CHANNEL_ROLES
    from hypnoscope.simulate import simulate_night

    nights = []
    for i in range(3):  # band powers of simulated nights (the causal extractor, no ICA)
        stages = np.repeat(np.random.default_rng(i).permutation([0, 1, 2, 3, 4, 2, 3, 0]), 8)
        rec = read_psg(simulate_night(Hypnogram(stages), seed=10 + i), sfreq=100.0,
                       include_emg=False)
        bp = CausalBandPower(list(rec.roles), list(rec.ch_names))
        bp.push(rec.data)
        bp.finish()
        nights.append(Night(X=bp.night().features(), y=stages, subject_id=f"s{i}",
                            night_id=f"s{i}n1", kind="features",
                            channels=list(CHANNEL_LAYOUT), roles=list(CHANNEL_ROLES)))
    model = make_model("ssnet", causal=True, seq_len=8, epochs=1, seed=0, device="cpu",
                       num_threads=1).fit(nights[:2], nights[2:])
    onnx_path = export_onnx(model, tmp_path / "ssnet-causal.onnx")
    names, x = list(night["rec"].ch_names), night["rec"].data[:, : 60 * T]  # 30 min
    want = _staged(StreamingStager(names, model=model, lookahead=1), x, 0)
    got = _staged(StreamingStager(names, model=str(onnx_path), lookahead=1), x, 3)
    assert len(got) == 60
    assert [r.stage for r in got] == [r.stage for r in want]
    assert np.abs(np.array([r.proba for r in got])
                  - np.array([r.proba for r in want])).max() < 1e-4
