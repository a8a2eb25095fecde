"""Real third-party files (``tests/data/third_party/``): what hypnoscope reads from files
that other projects made, compared with an independent parse of the same bytes.

The corpus and where each file comes from are listed in ``PROVENANCE.md`` and
``manifest.json`` beside the files (SHA-256 checked here). The independent parsers live in
this file: :func:`_parse_edf` reads an EDF/EDF+/BDF/BDF+ file from its bytes (header fields,
digital-to-physical scaling, annotation TALs), and the hypnogram tests count stages from the
text, the TAL annotations or pandas, never through hypnoscope. hypnoscope is read through its
public readers (:func:`~hypnoscope.io.psg.recording_info`, :func:`~hypnoscope.io.psg.read_psg`,
:func:`~hypnoscope.io.hypnograms.read_hypnogram`) and the ``info``/``stats`` commands.

Every misread the corpus found has been fixed; a new one is written as the test of how
the file should be read, marked ``xfail(strict=True)`` until the reader gets it right.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypnoscope.cli import main
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.io.psg import read_psg, recording_info

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "third_party"
MANIFEST = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
ENTRIES = {f["path"]: f for f in MANIFEST["files"]}


def corpus_file(name: str) -> Path:
    """Where the corpus file ``name`` lies: under ``DATA``, or where the repository already
    keeps the same bytes (``location``, from the repository root; e.g. the hypnogram
    shipped in the package, not copied twice)."""
    entry = ENTRIES.get(name, {})
    return ROOT / entry["location"] if "location" in entry else DATA / name

#: EDF/BDF recordings of the corpus.
RECORDINGS = sorted(p for p in ENTRIES if p.endswith((".edf", ".bdf")))
#: Files whose signals are too short for one 30-s epoch (read_psg must refuse them).
TOO_SHORT = ["mne-python/duplicate_channel_labels.edf", "mne-python/test_bdf_stim_channel.bdf",
             "mne-python/test_edf_stim_channel.edf"]
#: Files with no channel named as EEG, EOG or EMG (read_psg must refuse them).
NO_ROLES = ["mne-python/test_uneven_samp.edf",
            "pyedflib/test_generator_datarec_generator_2.bdf"]
#: Recordings with a sub-second start (EDF+ time-keeping TAL of the first record).
SUBSECOND = {"pyedflib/test_subsecond.edf", "pyedflib/test_utf8.edf"}
#: Annotation-only EDF+ (no signal, a zero-length data record).
ANNOTATION_ONLY = {"edfio/SC4001EC-Hypnogram.edf"}
#: Sleep-EDF stage texts -> AASM stage; '?' and movement are unscored.
SLEEPEDF_STAGES = {"Sleep stage W": "W", "Sleep stage 1": "N1", "Sleep stage 2": "N2",
                   "Sleep stage 3": "N3", "Sleep stage 4": "N3", "Sleep stage R": "R"}
STATS_KEYS = {"W": "wake_min", "N1": "n1_min", "N2": "n2_min", "N3": "n3_min", "R": "rem_min"}


# ---------------------------------------------------------------- independent parsers
def _field(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


def _tals(block: bytes) -> list[tuple[float, float | None, list[str]]]:
    """The TALs of one record's annotation bytes: ``(onset, duration, texts)``."""
    out = []
    for tal in block.split(b"\x14\x00"):
        tal = tal.strip(b"\x00")
        if not tal:
            continue
        head, *texts = tal.split(b"\x14")
        onset, _, dur = head.partition(b"\x15")
        out.append((float(onset), float(dur) if dur else None,
                    [t.decode("utf-8") for t in texts]))
    return out


def _parse_edf(path: Path) -> dict:
    """An EDF/BDF file read from its bytes, by the EDF(+) specification alone.

    Annotation onsets are seconds from the first sample: a TAL's onset counts from the
    header's start second, the first record's time-keeping TAL gives the first sample's
    sub-second offset (``subsecond``)."""
    raw = path.read_bytes()
    bps = 3 if raw[:1] == b"\xff" else 2
    ns = int(_field(raw[252:256]))

    def column(offset: int, width: int) -> list[str]:
        start = 256 + offset * ns
        return [_field(raw[start + i * width: start + (i + 1) * width]) for i in range(ns)]

    labels, dims = column(0, 16), column(96, 8)
    pmin, pmax, dmin, dmax = (np.array(column(o, 8), float) for o in (104, 112, 120, 128))
    n_samps = [int(v) for v in column(216, 8)]
    n_records, record_sec = int(_field(raw[236:244])), float(_field(raw[244:252]))
    day, month, year = (int(v) for v in _field(raw[168:176]).split("."))
    hh, mm, ss = (int(v) for v in _field(raw[176:184]).split("."))
    start = dt.datetime(year + (1900 if year >= 85 else 2000), month, day, hh, mm, ss)
    data = np.frombuffer(raw, np.uint8, offset=256 * (ns + 1)).reshape(n_records, -1)
    signals, annotations, first_tal = {}, [], None
    pos = 0
    for i, label in enumerate(labels):
        block = data[:, pos: pos + n_samps[i] * bps]
        pos += n_samps[i] * bps
        if label in ("EDF Annotations", "BDF Annotations"):
            for rec in range(n_records):
                tals = _tals(block[rec].tobytes())
                first_tal = tals[0][0] if first_tal is None else first_tal
                annotations += [(on - first_tal, du, t) for on, du, texts in tals
                                for t in texts if t]
            continue
        if bps == 3:
            b = block.reshape(-1, 3).astype(np.int32)
            digital = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            digital = np.where(digital >= 1 << 23, digital - (1 << 24), digital)
        else:
            digital = block.reshape(-1).view("<i2").astype(np.int32)
        gain = (pmax[i] - pmin[i]) / (dmax[i] - dmin[i])
        signals[label if label not in signals else f"{label}#2"] = {
            "rate": n_samps[i] / record_sec, "unit": dims[i],
            "physical": pmin[i] + (digital - dmin[i]) * gain}
    return {"labels": [c for c in labels if c not in ("EDF Annotations", "BDF Annotations")],
            "signals": signals, "duration": n_records * record_sec, "start": start,
            "subsecond": first_tal or 0.0, "annotations": annotations}


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _stage_minutes_from_codes(labels: list[str], epoch_sec: float = 30.0) -> dict[str, float]:
    return {s: labels.count(s) * epoch_sec / 60 for s in STATS_KEYS}


# ---------------------------------------------------------------- the corpus itself
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_manifest_sha256_and_size(name):
    entry = ENTRIES[name]
    data = corpus_file(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert len(data) == entry["bytes"] <= 1_100_000
    for key in ("source_repo", "source_path", "commit", "licence", "description"):
        assert entry[key], (name, key)
    assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"])


def test_every_file_has_provenance():
    """Every file of the folder is named in PROVENANCE.md (its table) and the corpus stays
    small."""
    provenance = (DATA / "PROVENANCE.md").read_text(encoding="utf-8")
    files = [p for p in DATA.rglob("*") if p.is_file()
             and p.name not in ("PROVENANCE.md", "manifest.json")]
    for p in files:
        assert p.relative_to(DATA).as_posix() in provenance, p
    kept_here = {n for n, e in ENTRIES.items() if "location" not in e}
    assert kept_here <= {p.relative_to(DATA).as_posix() for p in files}
    assert all(corpus_file(n).is_file() and n in provenance for n in ENTRIES)
    assert sum(p.stat().st_size for p in files) < 5_000_000


def test_independent_parser_agrees_with_edfio():
    """The test's own EDF parser reads a file as edfio does (labels, rates, samples,
    annotations), so that it can serve as the reference."""
    import edfio

    for name in ("edfio/short_psg.edf", "pyedflib/test_utf8.edf"):
        ref, e = _parse_edf(corpus_file(name)), edfio.read_edf(corpus_file(name))
        assert [s.label for s in e.signals] == ref["labels"]
        for s in e.signals:
            assert s.sampling_frequency == ref["signals"][s.label]["rate"]
            np.testing.assert_allclose(s.data, ref["signals"][s.label]["physical"],
                                       rtol=1e-9, atol=1e-9)
        assert [a.text for a in e.annotations] == [a[2] for a in ref["annotations"]]


# ---------------------------------------------------------------- recordings: header
def _expected_names(labels: list[str]) -> list[str]:
    """Labels as MNE names channels: a label given to several signals gets ``-0``, ``-1``."""
    seen: dict[str, int] = {}
    out = []
    for c in labels:
        k = seen.get(c, 0)
        seen[c] = k + 1
        out.append(f"{c}-{k}" if labels.count(c) > 1 else c)
    return out


@pytest.mark.parametrize("name", RECORDINGS)
def test_info_channels_rates_units(name, capsys):
    """``hypnoscope info --json``: every signal with its stored rate and unit."""
    ref = _parse_edf(corpus_file(name))
    code, out, _ = _cli(capsys, "info", "--json", str(corpus_file(name)))
    assert code == 0
    info = json.loads(out)
    assert [c["name"] for c in info["channels"]] == _expected_names(ref["labels"])
    sigs = list(ref["signals"].values())
    assert [c["sfreq"] for c in info["channels"]] == pytest.approx([s["rate"] for s in sigs])
    # channels in use carry their header unit; an unused one may show MNE's 'n/a' for a
    # unit MNE does not know (Sleep-EDF's 'DegC')
    units = {"uV": "µV", "": "n/a"}
    for c, s in zip(info["channels"], sigs, strict=True):
        want = units.get(s["unit"], s["unit"])
        assert c["unit"] == want or (c["role"] is None and c["unit"] == "n/a"), (c, want)
    assert info == recording_info(corpus_file(name)) | {"source": str(corpus_file(name))}


@pytest.mark.parametrize("name", RECORDINGS)
def test_info_duration_and_annotations(name):
    """Duration and number of annotations; an annotation-only EDF+ (one data record of
    0 s) has no signal duration and all its annotations."""
    ref = _parse_edf(corpus_file(name))
    info = recording_info(corpus_file(name))
    if name in ANNOTATION_ONLY:
        assert ref["duration"] == 0 and not info["duration_sec"] and info["channels"] == []
    else:
        assert info["duration_sec"] == pytest.approx(ref["duration"])
    assert info["n_annotations"] == len(ref["annotations"])


@pytest.mark.parametrize("name", RECORDINGS)
def test_info_start_time(name):
    """The header's start, with the sub-second offset of an EDF+ first record."""
    ref = _parse_edf(corpus_file(name))
    start = ref["start"] + dt.timedelta(seconds=round(ref["subsecond"], 6))
    assert recording_info(corpus_file(name))["start_time"] == start.isoformat()


# ---------------------------------------------------------------- recordings: samples
@pytest.mark.parametrize("name", ["edfio/short_psg.edf", "edfio/short_psg.bdf"])
def test_read_psg_sleepedf_excerpt_samples(name):
    """Sleep-EDF's first 5 min: EEG and EOG at 100 Hz come out sample for sample in µV,
    the 1-Hz chin EMG is an envelope through its stored samples; other signals unused."""
    ref = _parse_edf(corpus_file(name))
    rec = read_psg(corpus_file(name))
    assert rec.ch_names == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
    assert rec.roles == ["eeg", "eeg", "eog", "emg_envelope"]
    assert rec.sfreq == 100.0 and rec.duration_sec == ref["duration"]
    assert rec.start_time == ref["start"]
    for i, ch in enumerate(rec.ch_names[:3]):
        np.testing.assert_allclose(rec.data[i], ref["signals"][ch]["physical"],
                                   rtol=1e-6, atol=1e-3)
    emg = ref["signals"]["EMG submental"]["physical"]
    np.testing.assert_allclose(rec.data[3, ::100], emg, rtol=1e-6, atol=1e-3)
    assert rec.meta["orig_sfreq"]["EMG submental"] == ref["signals"]["EMG submental"]["rate"]


@pytest.mark.parametrize("name", sorted(SUBSECOND))
def test_read_psg_pyedflib_annotations_and_samples(name):
    """One 128-Hz EEG read at its own rate sample for sample; annotations with their UTF-8
    texts and onsets (seconds from the header's start second, as the TALs give them)."""
    ref = _parse_edf(corpus_file(name))
    rec = read_psg(corpus_file(name), sfreq=128.0)
    assert rec.ch_names == ["Fp1"] and rec.roles == ["eeg"]
    np.testing.assert_allclose(rec.data[0], ref["signals"]["Fp1"]["physical"],
                               rtol=1e-6, atol=1e-3)
    assert list(rec.annotations.description) == [a[2] for a in ref["annotations"]]
    np.testing.assert_allclose(rec.annotations.onset, [a[0] for a in ref["annotations"]],
                               atol=1e-6)


def test_read_psg_named_channels_of_non_integer_rates():
    """pyedflib's generator BDF+ (500, 400, 250, 487.5 and 499.5 Hz in 2-s records): named
    as EEG, every channel keeps its stored rate in the metadata, the record count gives the
    duration and the 500-Hz sine comes out sample for sample at 500 Hz."""
    name = "pyedflib/test_generator_datarec_generator_2.bdf"
    ref = _parse_edf(corpus_file(name))
    rec = read_psg(corpus_file(name), eeg=ref["labels"], sfreq=500.0)
    assert rec.ch_names == ref["labels"] and set(rec.roles) == {"eeg"}
    assert rec.meta["orig_sfreq"] == {c: s["rate"] for c, s in ref["signals"].items()}
    assert rec.duration_sec == ref["duration"]
    np.testing.assert_allclose(rec.data[0], ref["signals"]["sine 2.5Hz"]["physical"],
                               rtol=1e-6, atol=1e-3)


# ---------------------------------------------------------------- recordings: refusals
@pytest.mark.parametrize("name", TOO_SHORT)
def test_read_psg_refuses_short_recording(name):
    ref = _parse_edf(corpus_file(name))
    with pytest.raises(ValueError) as err:
        read_psg(corpus_file(name))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(corpus_file(name)))
    assert f"{ref['duration']:.1f} s long" in msg and "30-s epoch" in msg


@pytest.mark.parametrize("name", NO_ROLES)
def test_read_psg_refuses_unrecognised_channels(name):
    ref = _parse_edf(corpus_file(name))
    with pytest.raises(ValueError) as err:
        read_psg(corpus_file(name))
    msg = str(err.value)
    assert "\n" not in msg and "--eeg" in msg
    assert f"Channels found: {ref['labels']}" in msg


@pytest.mark.parametrize("name", NO_ROLES)
def test_read_psg_unrecognised_channels_error_names_file(name):
    with pytest.raises(ValueError) as err:
        read_psg(corpus_file(name))
    assert str(err.value).startswith(str(corpus_file(name)))


def test_read_psg_refuses_annotation_only_file():
    """The Sleep-EDF hypnogram given as a recording: refused naming the file, its
    annotations and where it belongs (--hypnogram)."""
    path = corpus_file("edfio/SC4001EC-Hypnogram.edf")
    with pytest.raises(ValueError) as err:
        read_psg(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)) and "--hypnogram" in msg
    assert f"{len(_parse_edf(path)['annotations'])} annotations" in msg


@pytest.mark.parametrize("name", sorted(set(RECORDINGS) - ANNOTATION_ONLY))
def test_stats_refuses_recording_without_stages(name, capsys):
    """A PSG without stage annotations is not a hypnogram: exit 2, one line naming it."""
    code, out, err = _cli(capsys, "stats", str(corpus_file(name)))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(corpus_file(name)) in err and "sleep-stage" in err


def test_stats_on_bdf_prints_only_its_error(capsys):
    path = corpus_file("mne-python/test_bdf_stim_channel.bdf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = _cli(capsys, "stats", str(path))
    assert code == 2 and err.count("\n") == 1
    assert [str(w.message) for w in caught] == []


def _parse_vhdr(path: Path) -> dict:
    """A BrainVision header read as text: channel names, rate and the data file's length."""
    text = path.read_text(encoding="utf-8").splitlines()
    keys = dict(line.split("=", 1) for line in text if "=" in line and not line.startswith(";"))
    names = [keys[f"Ch{i}"].split(",")[0] for i in range(1, int(keys["NumberOfChannels"]) + 1)]
    assert keys["BinaryFormat"] == "IEEE_FLOAT_32"
    n_bytes = (path.parent / keys["DataFile"]).stat().st_size
    rate = 1e6 / float(keys["SamplingInterval"])
    return {"names": names, "rate": rate, "duration": n_bytes / (4 * len(names)) / rate}


def test_brainvision_without_data_refused():
    """bids-examples' BrainVision header with an empty data file: its channels and rate
    are read from the header, and staging input is refused as a 0-s recording."""
    path = corpus_file("bids-examples/sub-05_task-matchingpennies_eeg.vhdr")
    ref = _parse_vhdr(path)
    info = recording_info(path)
    assert [c["name"] for c in info["channels"]] == ref["names"]
    assert {c["sfreq"] for c in info["channels"]} == {ref["rate"]} == {info["file_sfreq"]}
    assert info["duration_sec"] == ref["duration"] == 0
    with pytest.raises(ValueError) as err:
        read_psg(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)) and "0.0 s long" in msg


# ---------------------------------------------------------------- scorings
def _sleepedf_minutes(path: Path) -> tuple[dict[str, float], float]:
    """Stage minutes and scored span of a Sleep-EDF hypnogram from its TALs alone."""
    minutes = dict.fromkeys(STATS_KEYS, 0.0)
    end = 0.0
    for onset, dur, text in _parse_edf(path)["annotations"]:
        end = max(end, onset + dur)
        if text in SLEEPEDF_STAGES:
            minutes[SLEEPEDF_STAGES[text]] += dur / 60
    return minutes, end


def test_sleepedf_hypnogram_stage_minutes(capsys):
    path = corpus_file("edfio/SC4001EC-Hypnogram.edf")
    ref, end = _sleepedf_minutes(path)
    hyp = read_hypnogram(path)
    assert hyp.duration_sec == end and hyp.onset_sec == 0.0
    assert hyp.start_time == _parse_edf(path)["start"]
    got = {s: float((hyp.codes == i).sum()) * hyp.epoch_sec / 60
           for i, s in enumerate(hyp.stage_names)}
    assert got == ref
    # the whole scored day (stats crops a scoring over 14 h to its night by default)
    code, out, _ = _cli(capsys, "stats", "--json", "--crop", "none", str(path))
    assert code == 0
    stats = json.loads(out)
    assert {s: stats[k] for s, k in STATS_KEYS.items()} == ref


def _yasa_minutes(path: Path) -> dict[str, float]:
    """Stage minutes of a YASA text hypnogram: its '# 0: Wake, ... 4: REM' legend applied
    to its integers (or its letter labels as they are)."""
    text = path.read_text(encoding="utf-8").splitlines()
    legend = {int(k): v for line in text if line.startswith("#")
              for k, v in re.findall(r"(\d+):\s*(\w+)", line)}
    names = {"Wake": "W", "REM": "R"}
    labels = [line.strip() for line in text if line.strip() and not line.startswith("#")]
    if legend:
        labels = [names.get(legend[int(v)], legend[int(v)]) for v in labels]
    return _stage_minutes_from_codes(labels)


@pytest.mark.parametrize("name", ["yasa/data_full_6hrs_100Hz_hypno_30s.txt",
                                  "yasa/sub-02_hypno_30s.txt"])
def test_yasa_hypnogram_stage_minutes(name, capsys):
    path = corpus_file(name)
    ref = _yasa_minutes(path)
    hyp = read_hypnogram(path)
    got = {s: float((hyp.codes == i).sum()) * hyp.epoch_sec / 60
           for i, s in enumerate(hyp.stage_names)}
    assert got == ref and (hyp.codes >= 0).all()
    code, out, _ = _cli(capsys, "stats", "--json", str(path))
    assert code == 0
    stats = json.loads(out)
    assert {s: stats[k] for s, k in STATS_KEYS.items()} == ref


def test_yasa_six_hour_example_keeps_its_rem():
    """YASA's own legend says 4 is REM: 155 epochs of REM (77.5 min), 182 of N3 (91 min)."""
    ref = _yasa_minutes(corpus_file("yasa/data_full_6hrs_100Hz_hypno_30s.txt"))
    assert ref["R"] == 77.5 and ref["N3"] == 91.0


def test_bids_events_without_stages_refused(capsys):
    path = corpus_file("bids-examples/sub-cbm001_task-protmap_events.tsv")
    events = pd.read_csv(path, sep="\t")
    assert "stage" not in events and not events["trial_type"].str.contains("stage").any()
    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_hypnogram(path)
    code, _, err = _cli(capsys, "stats", str(path))
    assert code == 2 and err.count("\n") == 1 and str(path) in err


def test_bids_task_events_with_stage_column_refused(capsys):
    """bids-examples' matching-pennies events: 'stage' is the experiment phase (1/2/3) of
    zero-duration trials, not a sleep stage; reading it as a hypnogram must fail naming
    the file."""
    path = corpus_file("bids-examples/sub-05_task-matchingpennies_events.tsv")
    events = pd.read_csv(path, sep="\t")
    assert set(events["stage"]) == {1, 2, 3} and (events["duration"] == 0).all()
    code, out, err = _cli(capsys, "stats", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(path) in err
