"""Scorings as other tools write them (issue #26): numeric EDF+/MNE annotation texts,
NSRR-translator XML with ontology concepts and no ``EventType``, BIDS task events that
are not scorings, and references that cover only part of a recording."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hypnoscope.cli import main
from hypnoscope.evaluation.sleepstats import sleep_statistics
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.stages import N1, N2, N3, R, W

# ------------------------------------------------ numeric annotation texts (EDF+, MNE)
#: Runs of (text, epochs): YASA numbering would give REM 4 epochs (2.0 min), N3 3 (1.5 min);
#: R&K numbering gives REM 0 min and N3 (3 + 4) x 0.5 = 3.5 min.
NUMERIC_RUNS = [("0", 4), ("1", 2), ("2", 6), ("3", 3), ("4", 4), ("2", 2), ("0", 1)]
N_NUMERIC = sum(n for _, n in NUMERIC_RUNS)


def _numeric_annotations():
    onsets, durations, texts, t = [], [], [], 0.0
    for text, n in NUMERIC_RUNS:
        onsets.append(t)
        durations.append(30.0 * n)
        texts.append(text)
        t += 30.0 * n
    return onsets, durations, texts


def _numeric_edf(path, extra=()):
    import edfio

    onsets, durations, texts = _numeric_annotations()
    anns = [edfio.EdfAnnotation(o, d, x) for o, d, x in zip(onsets, durations, texts,
                                                            strict=True)]
    anns += [edfio.EdfAnnotation(o, d, x) for o, d, x in extra]
    edfio.Edf(signals=[], annotations=anns).write(path)
    return path


def _rem_n3(hyp) -> tuple[float, float]:
    stats = sleep_statistics(hyp)
    return stats["rem_min"], stats["n3_min"]


def test_numeric_edf_annotations_with_a_4_and_no_5_are_refused(tmp_path):
    path = _numeric_edf(tmp_path / "night-Hypnogram.edf")
    with pytest.raises(ValueError) as exc:
        read_hypnogram(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: numeric stages [0, 1, 2, 3, 4] are ambiguous")
    assert "--stage-codes yasa" in msg and "--stage-codes rk" in msg


@pytest.mark.parametrize(("codes", "expected"), [("yasa", (2.0, 1.5)), ("rk", (0.0, 3.5))])
def test_stage_codes_decide_numeric_edf_annotations(tmp_path, codes, expected):
    hyp = read_hypnogram(_numeric_edf(tmp_path / "night-Hypnogram.edf"), stage_codes=codes)
    assert hyp.n_epochs == N_NUMERIC
    assert _rem_n3(hyp) == expected
    four = {"yasa": R, "rk": N3}[codes]
    np.testing.assert_array_equal(
        hyp.codes, [W] * 4 + [N1] * 2 + [N2] * 6 + [N3] * 3 + [four] * 4 + [N2] * 2 + [W])


def test_a_five_in_edf_annotations_means_rk(tmp_path):
    # the same night plus one epoch '5' after it: R&K, 4 -> N3, 5 -> REM
    path = _numeric_edf(tmp_path / "rk-Hypnogram.edf", extra=[(30.0 * N_NUMERIC, 30.0, "5")])
    hyp = read_hypnogram(path)
    assert hyp.n_epochs == N_NUMERIC + 1
    assert _rem_n3(hyp) == (0.5, 3.5)


def test_numeric_mne_annotations_follow_the_same_rule():
    import mne

    onsets, durations, texts = _numeric_annotations()
    ann = mne.Annotations(onsets, durations, texts)
    with pytest.raises(ValueError, match=r"^mne\.Annotations: numeric stages \[0, 1, 2, 3, 4\]"):
        read_hypnogram(ann)
    assert _rem_n3(read_hypnogram(ann, stage_codes="yasa")) == (2.0, 1.5)
    assert _rem_n3(read_hypnogram(ann, label_map="4=N3")) == (0.0, 3.5)
    # 0-3 read the same in both numberings: no refusal
    light = mne.Annotations([0.0, 60.0, 120.0], [60.0, 60.0, 60.0], ["0", "2", "3"])
    np.testing.assert_array_equal(read_hypnogram(light).codes, [W, W, N2, N2, N3, N3])


def test_cli_stats_on_numeric_edf_annotations(tmp_path, capsys):
    path = _numeric_edf(tmp_path / "night-Hypnogram.edf")
    assert main(["stats", str(path), "--strict"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and str(path) in err and "--stage-codes" in err
    assert main(["stats", str(path), "--stage-codes", "yasa", "--json"]) == 0
    stats = json.loads(capsys.readouterr()[0])
    assert (stats["rem_min"], stats["n3_min"]) == (2.0, 1.5)


# ------------------------------------------------ BIDS task events are not scorings
#: A BIDS task events file: experiment phases 1/2/3 in a `stage` column, duration 0,
#: trial_type without stage labels (what was read as a 31-min hypnogram).
TASK_EVENTS = ("onset\tduration\ttrial_type\tstage\n"
               "0.0\t0\tfixation\t1\n12.5\t0\tstim\t1\n610.2\t0\tstim\t2\n"
               "1205.7\t0\tstim\t3\n1830.1\t0\tfixation\t3\n")


def test_task_events_with_a_stage_column_are_refused(tmp_path):
    from hypnoscope.io.hypnograms import NotAScoringError

    path = tmp_path / "sub-01_task-mem_events.tsv"
    path.write_text(TASK_EVENTS, encoding="utf-8")
    with pytest.raises(NotAScoringError) as exc:
        read_hypnogram(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: not a sleep-stage scoring: its 5 stage rows have duration 0 "
                          "and are not one 30-s epoch apart (row 1, line 2: onset 0 s; row 2, "
                          "line 3: onset 12.5 s)")
    assert "needs stage labels" in msg and "30-s epochs" in msg


def test_task_phases_at_regular_onsets_are_refused_too(tmp_path):
    # whole epochs apart, but 20 epochs: each row would mark one epoch of a mostly empty night
    path = tmp_path / "phases.tsv"
    path.write_text("onset\tduration\tstage\n0\t0\t1\n600\t0\t2\n1200\t0\t3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"phases\.tsv: not a sleep-stage scoring: its 3 stage "
                                         r"rows have duration 0"):
        read_hypnogram(path)


def test_cli_stats_refuses_task_events_also_under_strict(tmp_path, capsys):
    path = tmp_path / "sub-01_task-mem_events.tsv"
    path.write_text(TASK_EVENTS, encoding="utf-8")
    for extra in ([], ["--strict"]):
        assert main(["stats", str(path), *extra]) == 2
        out, err = capsys.readouterr()
        assert out == "" and "not a sleep-stage scoring" in err and "Traceback" not in err


def test_epoch_rows_of_duration_0_and_runs_of_30_s_epochs_still_read(tmp_path):
    per_epoch = tmp_path / "epochs.tsv"
    per_epoch.write_text("onset\tduration\tstage\n0\t0\tW\n30\t0\tN1\n60\t0\tN2\n90\t0\tN2\n",
                         encoding="utf-8")
    hyp = read_hypnogram(per_epoch)
    assert hyp.codes.tolist() == [W, N1, N2, N2] and hyp.epoch_sec == 30.0
    # runs of whole 30-s epochs (shortest 90 s): 30-s epochs, not 90-s ones
    runs = tmp_path / "runs.tsv"
    runs.write_text("onset\tduration\tstage\n0\t90\tW\n90\t180\tN2\n270\t120\tR\n",
                    encoding="utf-8")
    hyp = read_hypnogram(runs)
    assert hyp.epoch_sec == 30.0
    assert hyp.codes.tolist() == [W] * 3 + [N2] * 6 + [R] * 4


def test_task_events_beside_a_bids_recording_are_not_its_scoring(tmp_path):
    from hypnoscope.io.bids import bids_events_file
    from hypnoscope.io.recordings import find_hypnogram

    eeg = tmp_path / "sub-01" / "eeg"
    eeg.mkdir(parents=True)
    psg = eeg / "sub-01_task-mem_eeg.edf"
    psg.write_bytes(b"")
    events = eeg / "sub-01_task-mem_events.tsv"
    # numeric trial types (condition codes) of duration 0 at task onsets
    events.write_text("onset\tduration\ttrial_type\n0.0\t0\t1\n12.5\t0\t2\n610.2\t0\t1\n",
                      encoding="utf-8")
    assert bids_events_file(psg) is None and find_hypnogram(psg) is None
    # a scoring in the same place is found: stage labels in 30-s rows
    events.write_text("onset\tduration\ttrial_type\n0\t30\tSleep stage W\n30\t60\tN2\n"
                      "45\t0\tLights off\n", encoding="utf-8")
    assert bids_events_file(psg) == events and find_hypnogram(psg) == events
    assert read_hypnogram(events).codes.tolist() == [W, N2, N2]


# ------------------------------------------- a reference covering part of the recording
def _night_codes(n: int = 180) -> np.ndarray:
    """A 90-min staged recording: W 20, N1 10, N2 60, N3 30, R 30, N2 20, W 10 epochs."""
    runs = [(W, 20), (N1, 10), (N2, 60), (N3, 30), (R, 30), (N2, 20), (W, 10)]
    codes = np.concatenate([np.full(k, c) for c, k in runs])
    assert codes.size == n
    return codes


def _partial_pair():
    """The prediction over the whole 5400-s recording; the reference (an NSRR-style
    scoring) starts 750 s in (25 epochs) and differs from it in 5 epochs."""
    from hypnoscope.hypnogram import Hypnogram

    codes = _night_codes()
    pred = Hypnogram(codes)
    ref_codes = codes[25:].copy()
    ref_codes[100:105] = W  # 5 of the 155 shared epochs differ (R -> W, epochs 125-129)
    ref = Hypnogram(ref_codes, onset_sec=750.0)
    return pred, ref


def test_a_reference_covering_a_sub_span_is_compared_over_it():
    from hypnoscope.evaluation.metrics import compare_hypnograms
    from hypnoscope.notices import Notices

    pred, ref = _partial_pair()
    notices = Notices()
    res = compare_hypnograms(pred, ref, notices=notices)
    assert res["n_common_epochs"] == 155 and res["offset_epochs"] == -25
    assert res["epochs"]["n_epochs"] == 155
    assert res["epochs"]["accuracy"] == pytest.approx(150 / 155)
    assert res["coverage"] == {"start_sec": 750.0, "end_sec": 5400.0, "covered_min": 77.5,
                               "prediction_min": 90.0, "n_pred_scored_outside": 25}
    assert [(n.code, n.severity) for n in notices] == [("reference-partial", "info")]
    assert notices[0].message == (
        "the reference covers 750-5400 s of the prediction's 0-5400 s (77.5 of 90.0 min, "
        "86 %); agreement and statistics are over that span only (25 scored prediction "
        "epochs outside it are not compared)")
    # statistics over the shared span: REM in the reference 25 epochs, in the prediction 30
    st = res["sleep_statistics"]
    assert (st["rem_min"]["ref"], st["rem_min"]["pred"]) == (12.5, 15.0)
    # a complete reference gives no notice
    quiet = Notices()
    assert compare_hypnograms(pred, pred.copy(), notices=quiet)["coverage"][
        "n_pred_scored_outside"] == 0
    assert list(quiet) == []


def test_a_reference_of_another_night_is_still_refused():
    from hypnoscope.evaluation.metrics import compare_hypnograms
    from hypnoscope.hypnogram import Hypnogram

    pred, _ = _partial_pair()
    # starts after the recording ends
    with pytest.raises(ValueError, match="do not overlap in time"):
        compare_hypnograms(pred, Hypnogram(_night_codes(), onset_sec=6000.0))
    # covers much longer than the recording: 40 scored epochs past its end
    longer = Hypnogram(np.concatenate([_night_codes(), np.full(40, N2)]))
    with pytest.raises(ValueError, match=r"the reference has 40 scored epochs outside the "
                                         r"time span of the prediction .* same night\?"):
        compare_hypnograms(pred, longer)


def test_cli_compare_with_a_late_starting_nsrr_reference(tmp_path, capsys, caplog):
    import logging

    from hypnoscope.io.nsrr_xml import write_nsrr_xml

    pred, ref = _partial_pair()
    pred_path = pred.to_tsv(tmp_path / "shhs1-200001.hypnogram.tsv")
    ref_path = write_nsrr_xml(ref, tmp_path / "shhs1-200001-nsrr.xml", recording_sec=5400.0)
    assert read_hypnogram(ref_path).onset_sec == 750.0
    with caplog.at_level(logging.INFO, logger="hypnoscope"):
        code = main(["compare", str(pred_path), str(ref_path), "--json"])
    out = json.loads(capsys.readouterr()[0])
    assert code == 0
    assert out["n_common_epochs"] == 155
    assert out["epochs"]["accuracy"] == pytest.approx(150 / 155)
    assert out["coverage"]["n_pred_scored_outside"] == 25
    assert "the reference covers 750-5400 s" in caplog.text
