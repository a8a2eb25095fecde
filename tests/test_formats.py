"""Recordings in any format MNE reads: EDF, BrainVision and FIF files written by the tests
go through the same role resolution, units check and resampling, and stage alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hypnoscope.io.psg import read_psg
from hypnoscope.io.recordings import list_recordings, recording_stem

#: An AASM-style montage at a clinical rate (the simulated Sleep-EDF channels renamed).
AASM_NAMES = {"EEG Fpz-Cz": "F4-M1", "EEG Pz-Oz": "O2-M1", "EOG horizontal": "E1-M2",
              "EMG submental": "Chin1-Chin2"}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """One simulated 2-h night at 256 Hz in EDF, BrainVision and FIF, and its hypnogram."""
    import mne

    from hypnoscope.simulate import sample_hypnogram, simulate_night

    hyp = sample_hypnogram(seed=1, duration_h=2.0, wake_pad_min=10)
    raw = simulate_night(hyp, seed=1, mode="telemetry", sfreq=256.0)
    raw.rename_channels(AASM_NAMES)
    raw.set_channel_types({"O2-M1": "eeg"})
    out = tmp_path_factory.mktemp("formats")
    files = {"edf": out / "night_edf.edf", "brainvision": out / "night_bv.vhdr",
             "fif": out / "night_fif_raw.fif"}
    mne.export.export_raw(files["edf"], raw, verbose="error")
    mne.export.export_raw(files["brainvision"], raw, verbose="error")
    raw.save(files["fif"], verbose="error")
    hyp_path = hyp.to_tsv(out / "reference.tsv")
    return {"dir": out, "files": files, "hyp": hyp, "hyp_path": hyp_path,
            "raw_uv": raw.get_data() * 1e6}


def test_read_psg_gives_the_same_recording_from_edf_brainvision_and_fif(night):
    recs = {k: read_psg(f) for k, f in night["files"].items()}
    for kind, rec in recs.items():
        assert rec.ch_names == ["F4-M1", "O2-M1", "E1-M2", "Chin1-Chin2"], kind
        assert rec.roles == ["eeg", "eeg", "eog", "emg"], kind
        assert rec.sfreq == 100.0 and rec.meta["orig_sfreq"]["F4-M1"] == 256.0, kind
        assert rec.meta["warnings"] == [], kind  # µV amplitudes, nothing rescaled
        assert rec.n_samples == int(night["raw_uv"].shape[1] * 100 / 256), kind
    # BrainVision stores 0.1 µV steps; EDF 16 bits over the signal's range; FIF floats
    ref = recs["fif"].data
    scale = np.abs(ref).max(axis=1)
    for kind in ("edf", "brainvision"):
        err = np.abs(recs[kind].data - ref).max(axis=1)
        assert np.all(err < 1e-3 * scale + 0.1), (kind, err)
    # the resampled EEG keeps the simulated signal's amplitude
    sd_in = night["raw_uv"][0].std()
    assert recs["fif"].data[0].std() == pytest.approx(sd_in, rel=0.05)


def test_units_check_applies_to_brainvision_too(tmp_path, night):
    import mne

    raw = mne.io.read_raw_fif(night["files"]["fif"], preload=True, verbose="error")
    raw.apply_function(lambda x: x * 1e-3, picks=["F4-M1", "O2-M1", "E1-M2"])  # mV slip
    path = tmp_path / "milli.vhdr"
    mne.export.export_raw(path, raw, verbose="error")
    rec = read_psg(path)
    codes = {n.code for n in rec.meta["notices"]}
    assert "units-rescaled" in codes
    assert rec.meta["unit_factors"] == {"F4-M1": 1e3, "O2-M1": 1e3, "E1-M2": 1e3}
    good = read_psg(night["files"]["fif"])
    assert rec.data[0].std() == pytest.approx(good.data[0].std(), rel=0.02)


def test_folder_listing_and_stems_of_other_formats(night):
    found = [p.name for p in list_recordings(night["dir"])]
    # the BrainVision .eeg/.vmrk companions and the reference are not recordings
    assert found == ["night_bv.vhdr", "night_edf.edf", "night_fif_raw.fif"]
    assert recording_stem("a/night_bv.vhdr") == "night_bv"
    assert recording_stem("x.FIF.gz") == "x"


def test_bad_other_format_files_name_the_problem(tmp_path, night):
    bad = tmp_path / "rec.xyz"
    bad.write_text("nothing")
    with pytest.raises(ValueError, match=r"rec\.xyz: unsupported PSG file type '\.xyz'.*"
                                         r"BrainVision \.vhdr"):
        read_psg(bad)
    # a BrainVision header whose data file is missing
    vhdr = night["files"]["brainvision"].read_text()
    (tmp_path / "lonely.vhdr").write_text(vhdr.replace("night_bv.eeg", "lonely.eeg"))
    with pytest.raises(ValueError, match=r"lonely\.vhdr: cannot read BrainVision file"):
        read_psg(tmp_path / "lonely.vhdr")
    trunc = tmp_path / "trunc_raw.fif"
    trunc.write_bytes(night["files"]["fif"].read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"trunc_raw\.fif: recording is 1\.0 s long, "
                                         r"shorter than one 30-s epoch"):
        read_psg(trunc)


def test_stage_cli_stages_a_folder_of_three_formats_alike(tmp_path, night):
    from hypnoscope.cli import main

    out = tmp_path / "staged"
    files = night["files"]
    rc = main(["stage", str(files["edf"]), str(files["brainvision"]), str(files["fif"]),
               "--out", str(out), "--no-plot", "--reference"] + [str(night["hyp_path"])] * 3)
    assert rc == 0
    reports = {k: json.loads((out / f"{recording_stem(f)}.report.json").read_text())
               for k, f in files.items()}
    acc = {k: r["agreement"]["accuracy"] for k, r in reports.items()}
    assert all(a > 0.8 for a in acc.values()), acc
    stages = {k: np.loadtxt(out / f"{recording_stem(f)}.hypnogram.tsv", dtype=str,
                            skiprows=1, usecols=2) for k, f in files.items()}
    # the formats differ only by quantisation: the hypnograms agree almost everywhere
    for k in ("edf", "brainvision"):
        assert np.mean(stages[k] == stages["fif"]) > 0.97, k
