"""Shipped filter and window designs (``filters.design_fir``/``design_window``) are
MNE's and SciPy's, and ``filters.fir_filter`` filters as ``mne.filter.filter_data``
does, bit for bit; staging a recording at 100 Hz then imports neither ``scipy.signal``
nor scikit-learn, SciPy's statistics, pandas or the ``lightgbm`` package."""

from __future__ import annotations

import json
import subprocess
import sys

import mne
import numpy as np
import pytest
from scipy import signal

from hypnoscope.signal import bandpower, ica, spectral
from hypnoscope.signal import filters as pp


def test_shipped_designs_are_mne_and_scipy_designs():
    shipped = bandpower.pipeline_designs()
    fresh = bandpower.pipeline_designs(shipped=False)
    assert sorted(shipped) == ["eeg", "emg_check_window", "eog", "score", "welch_window"]
    for name in shipped:
        assert np.array_equal(shipped[name], fresh[name]), name
    assert np.array_equal(shipped["eeg"], mne.filter.create_filter(
        None, 100.0, 0.5, 30.0, verbose="error"))
    assert np.array_equal(shipped["welch_window"], signal.get_window("hamming", 400))
    assert np.array_equal(shipped["emg_check_window"], signal.get_window("hann", 400))
    assert len(shipped["score"]) == 512  # MNE's 10-s firwin2 design at 50 Hz
    # the file holds exactly these designs, nothing stale
    with np.load(pp.DESIGNS_FILE) as z:
        assert len(z.files) == len(shipped)
        assert {json.loads(k)["kind"] for k in z.files} == {"fir", "window"}


def test_unshipped_design_is_made_by_mne_once():
    taps = pp.design_fir(256.0, 0.5, 30.0)
    assert np.array_equal(taps, mne.filter.create_filter(None, 256.0, 0.5, 30.0,
                                                         verbose="error"))
    assert pp.design_fir(256.0, 0.5, 30.0) is taps  # cached for the process
    assert any(json.loads(k).get("sfreq") == 256.0 for k in pp.designs_made())
    # a band-stop: MNE's FIR notch at 50 Hz as notch_filter designs and applies it
    notch = bandpower.notch_filter_taps(256.0)
    x = np.random.default_rng(0).standard_normal(5000)
    assert np.array_equal(pp.fir_filter(x, notch),
                          mne.filter.notch_filter(x, 256.0, 50.0, verbose="error"))


SCORE = {k: v for k, v in ica.SCORE_FILTER.items() if k not in ("l_freq", "h_freq")}


@pytest.mark.parametrize("n", [2, 37, 700, 30_001, 250_000])
@pytest.mark.parametrize("design", ["eeg", "score"])
def test_fir_filter_equals_mne_filter_data(n, design, monkeypatch):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, n)) * 1e-5 + np.linspace(0, 3e-5, n)
    if design == "eeg":
        taps, phase = bandpower.band_filter_taps("eeg", 100.0), "zero"
        ref = mne.filter.filter_data(x, 100.0, 0.5, 30.0, verbose="error")
    else:
        taps, phase = ica.score_filter_taps(50.0), "zero-double"
        ref = mne.filter.filter_data(x, 50.0, 1.0, 10.0, verbose="error", **SCORE)
    got = pp.fir_filter(x, taps, phase=phase)
    assert got.shape == x.shape and np.array_equal(got, ref)
    assert np.array_equal(pp.fir_filter(x[1], taps, phase=phase), ref[1])  # 1-D input
    # blocks cut into several FFT calls, and filtering in place: still the same numbers
    monkeypatch.setattr(pp, "FIR_CHUNK_SAMPLES", 5000)
    assert np.array_equal(pp.fir_filter(x, taps, phase=phase), ref)
    y = x.copy()
    assert pp.fir_filter(y, taps, phase=phase, out=y) is y and np.array_equal(y, ref)
    with pytest.raises(ValueError, match=r"out must be a float64 array of shape \(2, "):
        pp.fir_filter(x, taps, out=np.zeros((2, n), dtype=np.float32))
    # more than 2 dimensions: the same per row; a strided out that cannot take them fails
    x3 = np.stack([x, x[::-1]])
    got3 = pp.fir_filter(x3, taps, phase=phase)
    assert np.array_equal(got3[0], ref)
    strided = np.zeros((2, 2, 2 * n))[..., ::2]  # its rows can still be viewed
    assert pp.fir_filter(x3, taps, phase=phase, out=strided) is strided
    assert np.array_equal(strided, got3)
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        pp.fir_filter(x3, taps, phase=phase, out=np.zeros((2, 2, n)).transpose(1, 0, 2))


def test_fir_filter_rejects_other_phases():
    with pytest.raises(ValueError, match="phase must be 'zero' or 'zero-double', got 'minimum'"):
        pp.fir_filter(np.zeros(100), np.ones(3) / 3, phase="minimum")


@pytest.mark.parametrize("average", ["mean", "median"])
def test_welch_equals_scipy(average):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3000)) + np.sin(np.arange(3000) / 7.0)
    f_ref, p_ref = signal.welch(x, fs=100.0, nperseg=400, average=average, axis=-1)
    f, p = spectral.welch(x, 100.0, nperseg=400, average=average)
    assert np.array_equal(f, f_ref) and np.array_equal(p, p_ref)
    f, p = spectral.welch(x, 100.0, nperseg=400, average=average, n_freqs=50)
    assert np.array_equal(p, p_ref[:, :50]) and np.array_equal(f, f_ref[:50])
    # shorter than one segment: SciPy's own (shortened segment) result
    with pytest.warns(UserWarning, match="nperseg"):
        f, p = spectral.welch(x[:, :300], 100.0, nperseg=400, average=average)
    with pytest.warns(UserWarning, match="nperseg"):
        f_ref, p_ref = signal.welch(x[:, :300], fs=100.0, nperseg=400, average=average)
    assert np.array_equal(p, p_ref)


def test_staging_imports_only_what_it_needs(tmp_path):
    """Staging a 100-Hz EDF with the shipped model: no ``scipy.signal`` (the designs are
    shipped), no ``scipy.stats``, scikit-learn, pandas or ``lightgbm`` package (the
    trees run in LightGBM's library, called directly)."""
    from conftest import write_psg_edf

    psg = write_psg_edf(tmp_path / "SC4991E0-PSG.edf", duration_sec=600.0, seed=2)
    code = ("import json, sys\nimport hypnoscope\n"
            f"h = hypnoscope.stage({str(psg)!r})\n"
            "assert h.n_epochs == 20\n"
            "print('MODULES=' + json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stdout.splitlines() if x.startswith("MODULES=")][-1]
    modules = set(json.loads(line[len("MODULES="):]))
    assert "mne.io" in modules and "scipy.fft" in modules
    assert sorted(m for m in modules if m.split(".")[0] in ("sklearn", "pandas", "lightgbm")
                  or m.startswith(("scipy.signal", "scipy.stats"))) == []
