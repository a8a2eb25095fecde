"""Reading PSG files other tools made (issue #26): GDF rates, EDF+D gaps, annotation-only
EDF files and sub-second start times.

The files are written here by minimal writers that follow the format specifications
(GDF 2.20, EDF+), so every expected value is known by construction.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.io.psg import read_psg, recording_info

# ---------------------------------------------------------------- GDF 2.20 writer


def write_gdf(path: Path, signals: dict[str, np.ndarray], record_length: tuple[int, int],
              samples_per_record: int, phys_range: float = 500.0) -> Path:
    """A GDF 2.20 file of int16 channels in µV (fixed header, one 256-byte variable
    header block per channel, data records; no event table). ``record_length`` is the
    record duration as the fraction ``(numerator, denominator)`` seconds."""
    names = list(signals)
    ns = len(names)
    data = np.array([signals[c] for c in names], dtype=float)
    n_records = data.shape[1] // samples_per_record
    fixed = bytearray(256)
    fixed[0:8] = b"GDF 2.20"
    fixed[8:74] = b"X X".ljust(66)
    fixed[88:152] = b"test".ljust(64)
    fixed[184:186] = np.uint16(ns + 1).tobytes()  # header length in 256-byte blocks
    fixed[236:244] = np.int64(n_records).tobytes()
    fixed[244:252] = np.array(record_length, dtype=np.uint32).tobytes()
    fixed[252:254] = np.uint16(ns).tobytes()

    def field(values, dtype) -> bytes:
        return np.asarray(values, dtype=dtype).tobytes()

    var = b"".join([
        b"".join(c.encode().ljust(16) for c in names),       # labels
        b" " * 80 * ns,                                       # transducer
        b"uV".ljust(6) * ns,                                  # physical dimension (old)
        field([4275] * ns, "<u2"),                            # µV unit code
        field([-phys_range] * ns, "<f8"), field([phys_range] * ns, "<f8"),
        field([-32768] * ns, "<f8"), field([32767] * ns, "<f8"),
        b" " * 68 * ns,                                       # prefiltering (obsolete)
        field([0] * ns, "<f4") * 3,                           # low-pass, high-pass, notch
        field([samples_per_record] * ns, "<i4"),              # samples per record
        field([3] * ns, "<i4"),                               # int16
        field([0] * 3 * ns, "<f4"),                           # electrode positions
        field([0] * 5 * ns, "<f4"),                           # impedances (2.19+)
    ])
    assert len(var) == 256 * ns
    digital = np.round((data + phys_range) / (2 * phys_range) * 65535 - 32768)
    digital = np.clip(digital, -32768, 32767).astype("<i2")
    records = digital[:, : n_records * samples_per_record].reshape(
        ns, n_records, samples_per_record).transpose(1, 0, 2)
    path.write_bytes(bytes(fixed) + var + records.tobytes())
    return path


@pytest.mark.parametrize(("record_length", "per_record"), [((1, 150), 1), ((2, 3), 100)])
def test_gdf_rate_is_samples_per_record_over_the_record_fraction(
        tmp_path, record_length, per_record):
    fs, sec = 150.0, 60.0
    t = np.arange(int(fs * sec)) / fs
    eeg = 40.0 * np.sin(2 * np.pi * 10.0 * t)
    eog = 30.0 * np.sin(2 * np.pi * 0.5 * t)
    path = write_gdf(tmp_path / "night.gdf", {"EEG Fpz-Cz": eeg, "EOG horizontal": eog},
                     record_length, per_record)

    info = recording_info(path)
    assert [c["sfreq"] for c in info["channels"]] == [150.0, 150.0]
    assert info["file_sfreq"] == 150.0
    assert info["duration_sec"] == 60.0

    rec = read_psg(path, sfreq=100.0)
    assert rec.meta["orig_sfreq"] == {"EEG Fpz-Cz": 150.0, "EOG horizontal": 150.0}
    assert rec.meta["resampling"]["EEG Fpz-Cz"] == "150 Hz -> 100 Hz (polyphase)"
    assert rec.n_samples == 6000
    assert not [n for n in rec.meta["notices"] if n.code == "low-rate"]
    # the 10-Hz sine survives (it would alias to nothing kept at every 150th sample)
    t100 = np.arange(6000) / 100.0
    inner = slice(100, -100)
    np.testing.assert_allclose(rec.data[0][inner], 40.0 * np.sin(2 * np.pi * 10 * t100)[inner],
                               atol=0.5)


def test_gdf_test_file_of_mne_is_150_hz():
    """MNE's own ``GDF/test_1ch.gdf`` (mne-testing-data; present only where MNE's testing
    data were downloaded): one 150-Hz channel in records of 1/150 s."""
    import mne

    root = mne.datasets.testing.data_path(download=False)
    path = Path(root) / "GDF" / "test_1ch.gdf" if root else None
    if path is None or not path.is_file():
        pytest.skip("MNE testing data not downloaded")
    info = recording_info(path)
    assert [(c["name"], c["sfreq"]) for c in info["channels"]] == [("ECG", 150.0)]
    assert info["duration_sec"] == 30.0


# ---------------------------------------------------------------- EDF+ writer


def write_edfplus(path: Path, signals: dict[str, tuple[float, np.ndarray]], record_sec: float,
                  onsets: list[float], reserved: str = "EDF+D",
                  start: dt.datetime = dt.datetime(2021, 3, 4, 22, 15, 0),
                  annotations: tuple[tuple[float, str], ...] = ()) -> Path:
    """An EDF+ file (the EDF+ specification): ``signals`` ``{label: (rate, µV samples)}``
    hold the samples of the data records in order (``len(onsets)`` records of
    ``record_sec``), an ``EDF Annotations`` signal gives each record's onset (seconds
    from ``start``, whole seconds in the header) in its time-keeping TAL, and the first
    record also carries ``annotations`` ``(onset, text)``."""
    labels = [*signals, "EDF Annotations"]
    per = [int(round(fs * record_sec)) for fs, _ in signals.values()]
    ann_bytes = 120
    n_rec = len(onsets)

    def cols(values, width):
        return b"".join(str(v).encode("latin-1").ljust(width)[:width] for v in values)

    ns = len(labels)
    head = (b"0".ljust(8) + b"X X X X".ljust(80) + b"Startdate X X X X".ljust(80)
            + start.strftime("%d.%m.%y").encode() + start.strftime("%H.%M.%S").encode()
            + str(256 * (ns + 1)).encode().ljust(8) + reserved.encode().ljust(44)
            + str(n_rec).encode().ljust(8) + f"{record_sec:g}".encode().ljust(8)
            + str(ns).encode().ljust(4))
    phys = [("-500", "500")] * len(signals) + [("-1", "1")]
    head += (cols(labels, 16) + cols([""] * ns, 80) + cols(["uV"] * len(signals) + [""], 8)
             + cols([p[0] for p in phys], 8) + cols([p[1] for p in phys], 8)
             + cols(["-32768"] * ns, 8) + cols(["32767"] * ns, 8) + cols([""] * ns, 80)
             + cols([*per, ann_bytes // 2], 8) + cols([""] * ns, 32))
    assert len(head) == 256 * (ns + 1)
    body = bytearray()
    for k, onset in enumerate(onsets):
        for (_fs, x), n in zip(signals.values(), per, strict=True):
            d = np.round(np.asarray(x[k * n:(k + 1) * n]) / 500.0 * 32767.5 - 0.5)
            body += np.clip(d, -32768, 32767).astype("<i2").tobytes()
        tal = f"+{onset:g}\x14\x14\x00".encode()
        if k == 0:
            tal += b"".join(f"+{o:g}\x14{t}\x14\x00".encode() for o, t in annotations)
        body += tal.ljust(ann_bytes, b"\x00")
    path.write_bytes(head + bytes(body))
    return path


def _sleepy(n: int, fs: float, phase: float = 0.0) -> np.ndarray:
    """A deterministic EEG-like signal in µV (no flat, noisy or clipped stretch)."""
    t = np.arange(n) / fs
    return (20 * np.sin(2 * np.pi * 1.3 * t + phase) + 10 * np.sin(2 * np.pi * 6.1 * t)
            + 6 * np.sin(2 * np.pi * 11.7 * t + 2 * phase) + 3 * np.sin(2 * np.pi * 0.4 * t))


def _edf_d(tmp_path: Path, **kw) -> tuple[Path, dict[str, np.ndarray]]:
    """An EDF+D night: 30 records of 10 s, a gap of 95 s, 30 records more (the gap
    from 300 to 395 s on the clock), and an annotation 5 s after the gap."""
    fs, n = 100.0, 60 * 1000
    data = {"EEG Fpz-Cz": _sleepy(n, fs), "EEG Pz-Oz": _sleepy(n, fs, 1.0),
            "EOG horizontal": _sleepy(n, fs, 2.0)}
    onsets = [10.0 * k for k in range(30)] + [395.0 + 10.0 * k for k in range(30)]
    path = write_edfplus(tmp_path / "gappy.edf", {c: (fs, x) for c, x in data.items()},
                         10.0, onsets, annotations=((400.0, "Lights on"),), **kw)
    return path, data


# ---------------------------------------------------------------- EDF+D: gaps on the clock
GAP_NOTICE = ("discontinuous recording (EDF+D) with 1 gap between its data records, at "
              "00:05:00-00:06:35 (1.58 min) from the start; the signals are placed on the "
              "recording's clock with the gaps filled by zeros, so every epoch keeps its "
              "clock time, and epochs overlapping a gap are not staged (unscored)")


def test_edf_d_records_are_placed_on_the_clock(tmp_path):
    from hypnoscope.io.psg import edf_timekeeping

    path, data = _edf_d(tmp_path)
    clock = edf_timekeeping(path)
    assert clock.reserved == "EDF+D" and clock.record_sec == 10.0
    assert clock.gaps() == [(300.0, 395.0)]

    rec = read_psg(path)
    assert rec.meta["gaps"] == [(300.0, 395.0)]
    assert rec.n_samples == 69500  # 695 s on the clock, not the 600 s of data
    q = 500.0 / 32767.5  # one digital step
    for i, ch in enumerate(rec.ch_names):
        x = data[ch]
        np.testing.assert_allclose(rec.data[i, :30000], x[:30000], atol=q)
        np.testing.assert_allclose(rec.data[i, 39500:], x[30000:], atol=q)
        assert not rec.data[i, 30000:39500].any()
    assert [(n.code, n.message) for n in rec.meta["notices"]] == [
        ("edf-gaps", f"{path}: {GAP_NOTICE}")]
    assert rec.meta["flat_epochs"] == {}  # the gap is not a flat signal
    # annotations keep their clock onsets: 5 s after the gap is 5 s into the second block
    assert list(rec.annotations.onset) == [400.0]
    np.testing.assert_allclose(rec.data[0, 40000], data["EEG Fpz-Cz"][30500], atol=q)


def test_edf_d_under_strict_is_refused_naming_the_gap(tmp_path):
    from hypnoscope.notices import StrictModeError

    path, _ = _edf_d(tmp_path)
    with pytest.raises(StrictModeError, match=r"00:05:00-00:06:35 \(1\.58 min\)"):
        read_psg(path, strict=True)


def test_edf_d_info_gives_the_clock_duration_and_the_gaps(tmp_path):
    from hypnoscope.cli.data import format_recording_info

    path, _ = _edf_d(tmp_path)
    info = recording_info(path)
    assert info["duration_sec"] == 695.0
    assert info["gaps"] == [(300.0, 395.0)]
    text = format_recording_info(info).splitlines()
    assert text[2] == "Duration:  695 s (0.19 h, 23 epochs of 30 s)"
    assert text[3] == "Gaps:      1 (discontinuous EDF+D): 00:05:00-00:06:35 (1.58 min)"


def test_edf_d_staging_leaves_the_epochs_of_a_gap_unscored(tmp_path):
    from hypnoscope.staging.pipeline import stage_recording

    path, _ = _edf_d(tmp_path)
    res = stage_recording(path)
    hyp = res.hypnogram
    assert hyp.n_epochs == 23
    # the gap 300-395 s overlaps epochs 10 (300-330 s) to 13 (390-420 s)
    assert np.flatnonzero(~hyp.scored).tolist() == [10, 11, 12, 13]
    assert all("disconnected:" in hyp.quality[i] for i in (10, 11, 12, 13))
    assert "edf-gaps" in [n.code for n in res.notices]


def test_edf_d_gap_epochs_are_not_training_labels(tmp_path):
    """A scored EDF+D night loaded for training leaves the epochs of a gap unscored: its
    zeros are no signal of the stage the scorer wrote there."""
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.signal.nights import load_recording

    path, _ = _edf_d(tmp_path)
    hyp = Hypnogram(np.full(23, 2), start_time=read_psg(path).start_time)
    night = load_recording(path, hyp, crop_wake_min=None, cache=False)
    assert len(night.y) == 23
    assert np.flatnonzero(night.y < 0).tolist() == [10, 11, 12, 13]
    assert (night.y[[9, 14]] == 2).all()


def test_edf_plus_without_gaps_reads_as_before(tmp_path):
    fs = 100.0
    x = _sleepy(6000, fs)
    for reserved in ("EDF+D", "EDF+C"):
        path = write_edfplus(tmp_path / f"{reserved}.edf", {"EEG Fpz-Cz": (fs, x)}, 10.0,
                             [10.0 * k for k in range(6)], reserved=reserved)
        rec = read_psg(path)
        assert rec.meta["gaps"] == [] and rec.n_samples == 6000
        assert not rec.meta["notices"]
        assert recording_info(path)["duration_sec"] == 60.0


def test_edf_d_with_overlapping_records_is_refused(tmp_path):
    fs = 100.0
    path = write_edfplus(tmp_path / "overlap.edf", {"EEG Fpz-Cz": (fs, _sleepy(6000, fs))},
                         10.0, [0.0, 10.0, 15.0, 40.0, 50.0, 60.0])
    with pytest.raises(ValueError, match=r"overlap\.edf: data record 3 starts at 15 s, before "
                                         r"the end of record 2 \(10 \+ 10 s\)"):
        read_psg(path)


# ---------------------------------------------------------------- annotation-only EDF
def test_info_on_a_hypnogram_edf_says_what_it_is(cli_handler, capsys):
    from importlib.resources import files

    import edfio

    path = Path(str(files("hypnoscope") / "data" / "SC4001EC-Hypnogram.edf"))
    n_expected = len(edfio.read_edf(path).annotations)  # an independent parser
    info = recording_info(path)
    assert n_expected == 154
    assert (info["kind"], info["n_annotations"], info["n_stage_annotations"]) == (
        "annotations", 154, 154)
    assert info["annotation_span_sec"] == [0.0, 86400.0]
    assert info["channels"] == [] and info["duration_sec"] is None
    assert cli_handler(["info", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "Kind:      annotation file, no signals (a hypnogram: 154 of 154 annotations are "
        "sleep stages)",
        "Start:     1989-04-24T16:13:00",
        "Annotations: 154, spanning 0-86400 s (24.00 h)"]
    with pytest.raises(ValueError, match=r"an annotation file with no signals .*154 "
                                         r"annotations.*--hypnogram"):
        read_psg(path)


# ---------------------------------------------------------------- sub-second start
def test_subsecond_start_is_kept_in_info_report_and_written_edf(tmp_path):
    import json

    import edfio

    from hypnoscope.staging.outputs import stage_file

    fs, n = 100.0, 60 * 1000
    sig = {"EEG Fpz-Cz": (fs, _sleepy(n, fs)), "EEG Pz-Oz": (fs, _sleepy(n, fs, 1.0)),
           "EOG horizontal": (fs, _sleepy(n, fs, 2.0))}
    path = write_edfplus(tmp_path / "night.edf", sig, 10.0,
                         [0.25 + 10.0 * k for k in range(60)], reserved="EDF+C",
                         annotations=((30.25, "Lights off"),))
    start = dt.datetime(2021, 3, 4, 22, 15, 0, 250000)
    assert recording_info(path)["start_time"] == "2021-03-04T22:15:00.250000"
    rec = read_psg(path)
    assert rec.start_time == start
    assert list(rec.annotations.onset) == [30.0]  # from the first record's start

    stage_file(path, tmp_path / "out", plot=False)
    out = tmp_path / "out"
    written = edfio.read_edf(out / "night.hypnogram.edf")
    assert dt.datetime.combine(written.startdate, written.starttime) == start
    from hypnoscope.io.hypnograms import read_edf_hypnogram

    assert read_edf_hypnogram(out / "night.hypnogram.edf").start_time == start
    report = json.loads((out / "night.report.json").read_text())
    assert "2021-03-04T22:15:00.250000" in json.dumps(report)
    assert "start 2021-03-04 22:15:00.25 " in (out / "night.report.html").read_text()


def test_a_subsecond_start_against_a_whole_second_hypnogram_is_not_an_offset():
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.io.recordings import place_hypnogram

    whole = dt.datetime(2021, 3, 4, 22, 15, 0)
    hyp = Hypnogram(np.array([0, 0, 1, 2, 2]), epoch_sec=30.0, start_time=whole)
    placed, onset, notes = place_hypnogram(hyp, 100.0, 600.0,
                                           whole + dt.timedelta(seconds=0.25))
    assert (placed.n_epochs, onset) == (5, 0.0)
    assert notes == ["hypnogram start 2021-03-04T22:15:00 and recording start "
                     "2021-03-04T22:15:00.250000 differ by 0.25 s, within the 1-s precision "
                     "of a whole-second start time; epochs not shifted"]
    # a real offset of whole seconds, or between two sub-second starts, still counts
    _, onset, _ = place_hypnogram(hyp, 100.0, 600.0, whole - dt.timedelta(seconds=2))
    assert onset == 2.0
    hyp_sub = hyp.copy(start_time=whole + dt.timedelta(seconds=0.5))
    _, onset, _ = place_hypnogram(hyp_sub, 100.0, 600.0, whole + dt.timedelta(seconds=0.25))
    assert onset == 0.25


def test_edf_d_given_as_a_raw_is_placed_or_refused_when_cropped(tmp_path):
    import mne

    path, _ = _edf_d(tmp_path)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    assert read_psg(raw).meta["gaps"] == [(300.0, 395.0)]
    with pytest.raises(ValueError, match=r"1 gap\(s\) \(00:05:00-00:06:35 \(1\.58 min\)\), "
                                         r"but the Raw object holds 59000 samples"):
        read_psg(raw.copy().crop(tmax=589.99))
