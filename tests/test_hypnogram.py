"""Tests of stage codes and the Hypnogram value object: readers, writers, alignment."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import mne
import numpy as np
import pytest

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.stages import (
    EDF_STAGE_TEXT,
    UNSCORED,
    codes_to_labels,
    label_to_code,
    label_to_code3,
    labels_to_codes,
    proba_to_3class,
    sleep_period_slice,
    stage_names,
    to_3class,
)

W, N1, N2, N3, R = range(5)


def _real_files(shared_data):
    files = sorted((shared_data / "sleepedf_hypnograms" / "sleep-cassette").glob("*.edf"))
    assert len(files) >= 50
    return files


# ------------------------------------------------------------------ stage codes
@pytest.mark.parametrize("label, code", [
    ("Sleep stage W", W), ("Sleep stage 1", N1), ("Sleep stage 2", N2),
    ("Sleep stage 3", N3), ("Sleep stage 4", N3), ("Sleep stage R", R),
    ("Sleep stage ?", UNSCORED), ("Movement time", UNSCORED), ("N3", N3), ("REM", R),
    ("wake", W), ("S4", N3), (" n2 ", N2), (-1, UNSCORED), (3, N3),
])
def test_rk_to_aasm_mapping(label, code):
    assert label_to_code(label) == code


def test_stage_helpers_and_errors():
    codes = labels_to_codes(["W", "N1", "N2", "N3", "R", "?"])
    assert codes.tolist() == [0, 1, 2, 3, 4, UNSCORED]
    assert to_3class(codes).tolist() == [0, 1, 1, 1, 2, UNSCORED]
    assert codes_to_labels(codes) == ["W", "N1", "N2", "N3", "R", "?"]
    p = np.array([[0.1, 0.2, 0.3, 0.1, 0.3]])
    np.testing.assert_allclose(proba_to_3class(p), [[0.1, 0.6, 0.3]])
    with pytest.raises(ValueError, match="unknown sleep-stage label 'N5'"):
        label_to_code("N5")
    with pytest.raises(ValueError, match="out of range"):
        label_to_code(7)


def test_three_class_names_and_edf_texts():
    assert stage_names(5) == ("W", "N1", "N2", "N3", "R")
    assert stage_names(3) == ("W", "NREM", "R")
    with pytest.raises(ValueError, match="n_classes must be 3 or 5, got 4"):
        stage_names(4)
    assert [label_to_code3(x) for x in ("W", "wake", " NREM ", "R", "rem", "?",
                                        "Movement time")] == [0, 0, 1, 2, 2, UNSCORED,
                                                              UNSCORED]
    with pytest.raises(ValueError, match="unknown 3-class stage label 'N2'"):
        label_to_code3("N2")
    with pytest.raises(ValueError, match="unknown 3-class stage label 'foo'"):
        label_to_code3("foo")
    # every EDF text reads back as its code
    assert {c: label_to_code(t) for c, t in EDF_STAGE_TEXT.items()} == {
        c: c for c in EDF_STAGE_TEXT}
    assert Hypnogram(["W", "NREM", "Movement time"], n_classes=3).codes.tolist() == [
        0, 1, UNSCORED]


# ------------------------------------------------------------------ value object
def test_hypnogram_basics_and_unscored():
    hyp = Hypnogram(["W", "N1", "Sleep stage 4", "?", "R", "Movement time"], onset_sec=30.0)
    assert hyp.codes.tolist() == [W, N1, N3, UNSCORED, R, UNSCORED]
    assert hyp.labels == ["W", "N1", "N3", "?", "R", "?"]
    assert hyp.scored.tolist() == [True, True, True, False, True, False]
    np.testing.assert_allclose(hyp.onsets, 30.0 + 30.0 * np.arange(6))
    assert hyp.duration_sec == 180.0
    h3 = hyp.as_3class()
    assert h3.n_classes == 3 and h3.codes.tolist() == [0, 1, 1, UNSCORED, 2, UNSCORED]
    assert Hypnogram(["W", "NREM", "R", "?"], n_classes=3).codes.tolist() == [0, 1, 2, UNSCORED]
    assert Hypnogram([0, -1, np.nan]).codes.tolist() == [0, UNSCORED, UNSCORED]
    sub = hyp[2:4]
    assert sub.codes.tolist() == [N3, UNSCORED] and sub.onset_sec == 90.0
    with pytest.raises(ValueError, match="probabilities must have shape"):
        Hypnogram([0, 1], probabilities=np.ones((3, 5)) / 5)
    with pytest.raises(ValueError, match="stage codes must be < 5"):
        Hypnogram([0, 5])
    with pytest.raises(ValueError, match="unknown 3-class stage labels"):
        Hypnogram(["W", "N2"], n_classes=3)


def test_probabilities_to_3class():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=4)
    hyp = Hypnogram(p.argmax(1), probabilities=p)
    np.testing.assert_allclose(hyp.confidence, p.max(1))
    h3 = hyp.as_3class()
    np.testing.assert_allclose(h3.probabilities.sum(1), 1.0)
    np.testing.assert_allclose(h3.probabilities[:, 1], p[:, 1:4].sum(1))


# ------------------------------------------------------------------ annotation rule
def test_from_annotations_off_grid_and_non_stage():
    # onsets/durations not on the 30-s grid: each epoch takes the stage at its midpoint
    hyp = Hypnogram.from_annotations([0.0, 45.0, 90.0], [45.0, 45.0, 30.0],
                                     ["Sleep stage W", "Sleep stage 2", "Lights on"])
    # mids 15 (W), 45 (N2 starts at 45), 75 (N2); 'Lights on' is not a stage
    assert hyp.codes.tolist() == [W, N2, N2]
    # grid starts at the first stage annotation; a gap becomes unscored
    gap = Hypnogram.from_annotations([10.0, 100.0], [60.0, 30.0], ["W", "R"])
    assert gap.onset_sec == 10.0
    assert gap.codes.tolist() == [W, W, UNSCORED, R]
    # zero-duration annotations count as one epoch
    zero = Hypnogram.from_annotations([0.0, 30.0], [0.0, 0.0], ["N1", "N2"])
    assert zero.codes.tolist() == [N1, N2]
    with pytest.raises(ValueError, match="no sleep-stage annotation"):
        Hypnogram.from_annotations([0.0], [30.0], ["Lights off"])


# ------------------------------------------------------------------ alignment
def test_align_to_rules():
    hyp = Hypnogram([W, N1, N2, N3, R] + [UNSCORED] * 20, onset_sec=0.0)
    short = hyp.align_to(5)  # trailing '?' dropped silently
    assert short.codes.tolist() == [W, N1, N2, N3, R]
    longer = hyp.align_to(30)
    assert longer.n_epochs == 30 and (longer.codes[25:] == UNSCORED).all()
    scored_tail = Hypnogram([N2] * 40)
    assert scored_tail.align_to(30).n_epochs == 30  # 10 scored epochs dropped: allowed
    with pytest.raises(ValueError, match="another recording"):
        scored_tail.align_to(29)
    with pytest.raises(ValueError, match="start at 0 s but the signal epochs start at 15 s"):
        hyp.align_to(25, onset_sec=15.0)
    assert hyp.align_to(25, onset_sec=0.0) == hyp
    p = np.full((2, 5), 0.2)
    padded = Hypnogram([W, N1], probabilities=p).align_to(4)
    np.testing.assert_allclose(padded.probabilities[2:], 0.2)


def test_sleep_period_slice():
    hyp = Hypnogram([W] * 100 + [N2, R] + [W] * 100)
    assert hyp.sleep_period_slice() == slice(40, 162)
    assert hyp.sleep_period_slice(wake_pad_min=0) == slice(100, 102)
    assert Hypnogram([W, N1, W]).sleep_period_slice() == slice(0, 3)
    with pytest.raises(ValueError, match="no sleep epoch"):
        Hypnogram([W, W, UNSCORED]).sleep_period_slice()
    # the one computation on stage codes: None without sleep, epoch length sets the pad
    codes = np.array([UNSCORED] * 3 + [W] * 100 + [N2, R] + [W] * 100)
    assert sleep_period_slice(codes) == slice(43, 165)
    assert sleep_period_slice(codes, wake_pad_min=5, epoch_sec=60.0) == slice(98, 110)
    assert sleep_period_slice(to_3class(codes), 0) == slice(103, 105)  # NREM and R sleep
    assert sleep_period_slice(np.array([W, UNSCORED, W])) is None
    half_min = Hypnogram([W] * 100 + [N2, R] + [W] * 100, epoch_sec=60.0)
    assert half_min.sleep_period_slice(30.0) == slice(70, 132)


def test_crop_to_sleep_moves_start_time():
    start = dt.datetime(1989, 4, 24, 16, 13)
    hyp = Hypnogram([W] * 100 + [N2, R] + [W] * 100, start_time=start)
    crop = hyp.crop_to_sleep(30)
    assert crop.n_epochs == 122 and crop.onset_sec == 0.0
    np.testing.assert_array_equal(crop.codes, hyp.codes[40:162])
    assert crop.start_time == start + dt.timedelta(seconds=40 * 30)
    assert Hypnogram([W, N1, W]).crop_to_sleep().start_time is None


def test_nonpositive_epoch_length_is_refused():
    with pytest.raises(ValueError, match="epoch length must be a positive number"):
        Hypnogram.from_annotations([0, 30], [30, 30], ["W", "N2"], epoch_sec=0)


# ------------------------------------------------------------------ round trips
@pytest.fixture
def hyp_probs():
    rng = np.random.default_rng(1)
    codes = np.array([W, W, N1, N2, N2, N3, N3, R, R, UNSCORED, W])
    p = rng.dirichlet(np.ones(5), size=codes.size)
    return Hypnogram(codes, onset_sec=60.0, start_time=dt.datetime(2021, 3, 4, 23, 15, 0),
                     probabilities=p)


def test_edf_round_trip(tmp_path, hyp_probs):
    path = hyp_probs.to_edf(tmp_path / "x-Hypnogram.edf")
    back = read_hypnogram(path)
    assert back == hyp_probs and back.start_time == hyp_probs.start_time
    ann = mne.read_annotations(path)
    assert set(ann.description) <= {"Sleep stage W", "Sleep stage 1", "Sleep stage 2",
                                    "Sleep stage 3", "Sleep stage R", "Sleep stage ?"}
    assert not list(tmp_path.glob(".*part*"))  # atomic: no temporary left
    with pytest.raises(ValueError, match="only 5-class"):
        hyp_probs.as_3class().to_edf(tmp_path / "y.edf")
    # an unknown start time stays unknown (not the EDF placeholder date 1985-01-01)
    no_start = read_hypnogram(hyp_probs.copy(start_time=None).to_edf(tmp_path / "z.edf"))
    assert no_start.start_time is None and no_start == hyp_probs


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_table_round_trip(tmp_path, hyp_probs, suffix):
    path = tmp_path / f"h{suffix}"
    (hyp_probs.to_tsv(path) if suffix == ".tsv" else hyp_probs.to_csv(path))
    back = read_hypnogram(path)
    assert back == hyp_probs
    np.testing.assert_allclose(back.probabilities, hyp_probs.probabilities, rtol=1e-5)


@pytest.mark.parametrize("sep", ["\t", ","])
def test_table_bytes_are_pandas_to_csv(tmp_path, hyp_probs, sep):
    """The table is written without pandas, byte for byte as ``to_dataframe().to_csv``
    writes it (quoting, ``%.6g`` floats, empty NaN)."""
    proba = hyp_probs.probabilities.copy()
    proba[1] = np.nan
    quality = ["ok", "flat, clipped", 'say "hi"'] + ["ok"] * (hyp_probs.n_epochs - 3)
    written = []
    for hyp in (hyp_probs, hyp_probs.copy(probabilities=proba, quality=quality),
                Hypnogram(["W", "N2", "?"], epoch_sec=20.0, onset_sec=7.25)):
        got = hyp.to_tsv(tmp_path / "got.txt", sep=sep).read_bytes()
        hyp.to_dataframe().to_csv(tmp_path / "ref.txt", sep=sep, index=False,
                                  float_format="%.6g")
        assert got == (tmp_path / "ref.txt").read_bytes()
        written.append(got.decode())
    assert '"say ""hi"""' in written[1] and "\n7.25" + sep + "20" + sep + "W\n" in written[2]
    assert ('"flat, clipped"' in written[1]) == (sep == ",")


def test_table_runs_and_errors(tmp_path):
    path = tmp_path / "runs.tsv"
    path.write_text("onset\tduration\tstage\n0\t60\tW\n60\t90\tN2\n150\t30\tREM\n")
    assert read_hypnogram(path).codes.tolist() == [W, W, N2, N2, N2, R]
    bad = tmp_path / "bad.csv"
    bad.write_text("time,label\n0,W\n")
    with pytest.raises(ValueError, match=r"bad\.csv: missing column"):
        read_hypnogram(bad)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_hypnogram(tmp_path / "missing.tsv")


def test_txt_round_trip_and_errors(tmp_path, hyp_probs):
    path = hyp_probs.to_txt(tmp_path / "h.txt")
    back = read_hypnogram(path)
    np.testing.assert_array_equal(back.codes, hyp_probs.codes)
    bad = tmp_path / "bad.txt"
    bad.write_text("W\n# comment\nN2\nN7\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 4"):
        read_hypnogram(bad)


def test_3class_table_and_txt_round_trip(tmp_path, hyp_probs):
    # 'NREM' must not be dropped as a non-stage annotation (it used to become unscored)
    h3 = hyp_probs.as_3class()
    for writer, name in ((h3.to_tsv, "h3.tsv"), (h3.to_csv, "h3.csv"), (h3.to_txt, "h3.txt")):
        back = read_hypnogram(writer(tmp_path / name))
        assert back.n_classes == 3, name
        np.testing.assert_array_equal(back.codes, h3.codes)
    bad = tmp_path / "mixed.txt"
    bad.write_text("W\nNREM\nN2\n")
    with pytest.raises(ValueError, match=r"line 3: unknown 3-class stage label 'N2'"):
        read_hypnogram(bad)


def test_mne_annotations_round_trip(hyp_probs):
    for merge in (True, False):
        ann = hyp_probs.to_mne_annotations(merge=merge)
        n_runs = 1 + np.count_nonzero(np.diff(hyp_probs.codes))
        assert len(ann) == (n_runs if merge else hyp_probs.n_epochs)
        back = read_hypnogram(ann)
        assert back == hyp_probs
        assert back.start_time == hyp_probs.start_time


# ------------------------------------------------------------------ real Sleep-EDF files
def test_real_sleepedf_hypnograms(shared_data):
    for path in _real_files(shared_data):
        hyp = read_hypnogram(path)
        ann = mne.read_annotations(path)
        expected: Counter = Counter()
        for dur, text in zip(ann.duration, ann.description, strict=True):
            expected[label_to_code(text)] += int(round(dur / 30.0))
        got = Counter(hyp.codes.tolist())
        for code in (W, N1, N2, N3, R):
            assert got[code] == expected[code], (path.name, code)
        span = float(np.max(ann.onset + ann.duration) - ann.onset.min())
        assert hyp.n_epochs == int(round(span / 30.0)), path.name
        assert hyp.onset_sec == pytest.approx(float(ann.onset.min()))
        assert hyp.start_time == _edf_header_start(path), path.name


def _edf_header_start(path) -> dt.datetime:
    """Start date and time read from the fixed EDF header bytes 168-183 ('dd.mm.yy',
    'hh.mm.ss'; years 85-99 are 19xx), independently of the hypnogram reader."""
    head = path.read_bytes()[:184].decode("ascii")
    day, month, year = (int(v) for v in head[168:176].split("."))
    hour, minute, second = (int(v) for v in head[176:184].split("."))
    return dt.datetime(year + (1900 if year >= 85 else 2000), month, day, hour, minute,
                       second)


def test_real_hypnogram_round_trips(shared_data, tmp_path):
    src = _real_files(shared_data)[0]
    hyp = read_hypnogram(src)
    ann = mne.read_annotations(src)
    n_rk34 = int(sum(round(d / 30) for d, t in zip(ann.duration, ann.description, strict=True)
                     if t in ("Sleep stage 3", "Sleep stage 4")))
    assert n_rk34 > 0 and (hyp.codes == N3).sum() == n_rk34  # R&K 3 and 4 merged into N3
    for writer, name in ((hyp.to_edf, "a.edf"), (hyp.to_tsv, "a.tsv"), (hyp.to_csv, "a.csv")):
        assert read_hypnogram(writer(tmp_path / name)) == hyp
    assert read_hypnogram(hyp.to_mne_annotations()) == hyp
    txt = read_hypnogram(hyp.to_txt(tmp_path / "a.txt"))
    np.testing.assert_array_equal(txt.codes, hyp.codes)
    # statistics of the real night: the sleep-period crop keeps all sleep epochs
    sl = hyp.sleep_period_slice()
    assert (hyp.codes[sl] > 0).sum() == (hyp.codes > 0).sum()


# ------------------------------------------------------------------ bad input, labels
def _table(tmp_path, rows, name="h.tsv", header="onset\tduration\tstage"):
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_table_bad_numbers_name_file_row_and_column(tmp_path):
    # the case: a non-numeric duration used to give 'cannot convert float NaN'
    path = _table(tmp_path, ["0\t30\tW", "30\tabc\tN2", "60\t30\tN2"])
    with pytest.raises(ValueError, match=r"h\.tsv, row 2, line 3, column 'duration': 'abc' "
                                         r"is not a non-negative number of seconds"):
        read_hypnogram(path)
    path = _table(tmp_path, ["# scorer: A", "0\t30\tW", "\t30\tN2"])
    with pytest.raises(ValueError, match=r"row 2, line 4, column 'onset': empty is not a "
                                         r"number of seconds"):
        read_hypnogram(path)
    path = _table(tmp_path, ["0\t30\tW", "30\t-30\tN2", "60\t-1\tN2"])
    with pytest.raises(ValueError, match=r"row 2, line 3, column 'duration': '-30' is not a "
                                         r"non-negative number of seconds \(2 rows like this\)"):
        read_hypnogram(path)
    path = _table(tmp_path, ["0,30,W", "30,inf,N2"], name="h.csv", header="onset,duration,stage")
    with pytest.raises(ValueError, match=r"h\.csv, row 2, line 3, column 'duration': 'inf'"):
        read_hypnogram(path)
    path = _table(tmp_path, [])
    with pytest.raises(ValueError, match=r"h\.tsv: no rows after the header"):
        read_hypnogram(path)
    path = _table(tmp_path, ["0\t30\tW\tx\ty"])
    with pytest.raises(ValueError, match=r"h\.tsv: cannot read as a tab-separated table"):
        read_hypnogram(path)
    # probabilities are checked the same way
    path = _table(tmp_path, ["0\t30\tW\t1\t0\t0\t0\tzero"],
                  header="onset\tduration\tstage\tp_W\tp_N1\tp_N2\tp_N3\tp_R")
    with pytest.raises(ValueError, match=r"row 1, line 2, column 'p_r': 'zero'"):
        read_hypnogram(path)


@pytest.mark.parametrize("label", ["XYZ", "NREM 2", "N 2", "N5", "Stage 6"])
def test_unknown_table_label_is_an_error_listing_accepted(tmp_path, label):
    path = _table(tmp_path, ["0\t30\tW", f"30\t30\t{label}", "60\t30\tN2"])
    with pytest.raises(ValueError) as err:
        read_hypnogram(path)
    msg = str(err.value)
    assert f"h.tsv: unknown stage label(s) {label!r} (row 2, line 3) in column 'stage'" in msg
    assert "Accepted labels (case-insensitive): W (" in msg and "'sleep stage 4'" in msg
    assert "unscored: '?', 'sleep stage ?', 'movement time'" in msg and "'u'" in msg
    assert "--label-map" in msg
    # the same label in a text file: file and line
    txt = tmp_path / "h.txt"
    txt.write_text(f"W\n{label}\n")
    with pytest.raises(ValueError, match=rf"h\.txt, line 2: unknown sleep-stage label "
                                         rf"'{label}'.*Accepted labels"):
        read_hypnogram(txt)


def test_unknown_labels_listed_once_each(tmp_path):
    path = _table(tmp_path, ["0\t30\tXYZ", "30\t30\tNREM 2", "60\t30\tXYZ", "90\t30\tN 2"])
    with pytest.raises(ValueError, match=r"unknown stage label\(s\) 'XYZ' \(row 1, line 2\), "
                                         r"'NREM 2' \(row 2, line 3\), 'N 2' \(row 4, line 5\)"):
        read_hypnogram(path)


def test_documented_unscored_labels_stay_unscored(tmp_path):
    labels = ["?", "Sleep stage ?", "Movement time", "MT", "U", "unknown", "unscored",
              "Artefact"]
    path = _table(tmp_path, [f"{30 * i}\t30\t{lab}" for i, lab in enumerate(["W"] + labels)])
    hyp = read_hypnogram(path)
    assert hyp.codes.tolist() == [W] + [UNSCORED] * len(labels)


def test_edf_annotations_unknown_stage_text_vs_events(tmp_path):
    import edfio

    def write(texts):
        anns = [edfio.EdfAnnotation(30.0 * i, 30.0, t) for i, t in enumerate(texts)]
        edf = edfio.Edf([], annotations=anns, starttime=dt.time(22, 0))
        path = tmp_path / "x-Hypnogram.edf"
        edf.write(path)
        return path

    # events that are not stages are ignored (documented), stages read
    hyp = read_hypnogram(write(["Sleep stage W", "Lights off", "Sleep stage 2"]))
    assert hyp.codes.tolist() == [W, UNSCORED, N2]
    # a text that claims to be a stage but is unknown is an error, not unscored
    with pytest.raises(ValueError, match=r"x-Hypnogram\.edf: unknown stage label\(s\) "
                                         r"'Sleep stage XYZ' \(annotation 2, onset 30 s\)"):
        read_hypnogram(write(["Sleep stage W", "Sleep stage XYZ", "Sleep stage 2"]))
    with pytest.raises(ValueError, match=r"'NREM 2' \(annotation 1"):
        read_hypnogram(mne.Annotations([0.0, 30.0], [30.0, 30.0], ["NREM 2", "W"]))
    got = read_hypnogram(write(["Sleep stage W", "Sleep stage XYZ"]),
                         label_map={"Sleep stage XYZ": "?"})
    assert got.codes.tolist() == [W, UNSCORED]


def test_label_map_forms(tmp_path):
    path = _table(tmp_path, ["0\t30\tWach", "30\t30\tNREM2", "60\t30\tN 2", "90\t30\tREM"])
    expected = [W, N2, N2, R]
    as_dict = read_hypnogram(path, label_map={"wach": "W", "NREM2": "N2", " N 2 ": "n2"})
    assert as_dict.codes.tolist() == expected
    as_text = read_hypnogram(path, label_map="Wach=W, NREM2=N2,N 2=N2")
    assert as_text.codes.tolist() == expected
    js = tmp_path / "map.json"
    js.write_text('{"Wach": "W", "NREM2": "N2", "N 2": "N2"}')
    assert read_hypnogram(path, label_map=js).codes.tolist() == expected
    assert read_hypnogram(path, label_map=str(js)).codes.tolist() == expected
    txt = tmp_path / "h.txt"
    txt.write_text("Wach\nNREM2\nN 2\nREM\n")
    assert read_hypnogram(txt, label_map="Wach=W,NREM2=N2,N 2=N2").codes.tolist() == expected
    # a 3-class site convention
    assert read_hypnogram(txt, label_map="Wach=W,NREM2=NREM,N 2=NREM").codes.tolist() == [
        0, 1, 1, 2]


def test_label_map_errors(tmp_path):
    from hypnoscope.stages import parse_label_map

    with pytest.raises(ValueError, match=r"'NREM2' -> 'N7': 'N7' is not a stage; expected W, "
                                         r"N1, N2, N3, R, NREM or \?"):
        parse_label_map({"NREM2": "N7"})
    with pytest.raises(ValueError, match=r"label map 'NREM2:N2': 'NREM2:N2' is not "
                                         r"LABEL=STAGE"):
        parse_label_map("NREM2:N2")
    with pytest.raises(FileNotFoundError, match="label map file not found: .*nope.json"):
        parse_label_map(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"bad\.json: expected a JSON object"):
        parse_label_map(bad)
    bad.write_text("{oops")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        parse_label_map(bad)
    assert parse_label_map(None) is None
    assert parse_label_map("A=?, b = rem") == {"a": "?", "b": "rem"}


def test_cli_label_map_for_stats_and_compare(tmp_path, capsys):
    from hypnoscope.cli import main

    path = _table(tmp_path, ["0\t60\tW", "60\t120\tNREM 2", "180\t30\tREM", "210\t30\tW"])
    assert main(["stats", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hypnoscope stats: error: ") and "'NREM 2' (row 2, line 3)" in err
    assert "Traceback" not in err
    assert main(["stats", str(path), "--json", "--label-map", "NREM 2=N2"]) == 0
    assert '"total_sleep_min": 2.5' in capsys.readouterr().out
    ref = Hypnogram([W, W, N2, N2, N2, N2, R, W]).to_tsv(tmp_path / "ref.tsv")
    assert main(["compare", str(path), str(ref), "--json", "--label-map", "NREM 2=N2"]) == 0
    assert '"accuracy": 1.0' in capsys.readouterr().out
    assert main(["compare", str(path), str(ref), "--label-map", "NREM 2=N9"]) == 2
    assert "'NREM 2' -> 'N9': 'N9' is not a stage" in capsys.readouterr().err


def test_cli_compare_prints_its_confusion_matrix(tmp_path, capsys):
    """compare's text output holds the confusion matrix its help promises: rows the
    reference stages, columns the predicted ones, counts of epochs."""
    from hypnoscope.cli import main

    ref = Hypnogram([W, W, N1, N2, N2, N2, N3, N3, R, R, W]).to_tsv(tmp_path / "ref.tsv")
    pred = Hypnogram([W, N1, N1, N2, N2, N3, N3, N3, R, N2, W]).to_tsv(tmp_path / "pred.tsv")
    assert main(["compare", str(pred), str(ref)]) == 0
    lines = capsys.readouterr().out.splitlines()
    i = lines.index("confusion matrix (rows = reference, columns = predicted)")
    assert lines[i + 1].split() == ["W", "N1", "N2", "N3", "R"]
    rows = {ln.split()[0]: [int(v) for v in ln.split()[1:]] for ln in lines[i + 2:i + 7]}
    assert rows == {"W": [2, 1, 0, 0, 0], "N1": [0, 1, 0, 0, 0], "N2": [0, 0, 2, 1, 0],
                    "N3": [0, 0, 0, 2, 0], "R": [0, 0, 1, 0, 1]}
