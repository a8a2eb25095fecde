"""Nap studies (MSLT/MWT): the AASM rules on constructed hypnograms, the day summary, the
library that stages naps and the ``hypnoscope mslt`` command."""

from __future__ import annotations

import pytest

from hypnoscope.evaluation.naps import NapScore, score_nap, summarise_day
from hypnoscope.hypnogram import Hypnogram


def _hyp(*runs: tuple[str, int], **kw) -> Hypnogram:
    """A hypnogram from (label, n_epochs) runs (30-s epochs)."""
    return Hypnogram([lab for lab, n in runs for _ in range(n)], **kw)


# ---------------------------------------------------------------- MSLT rules
def test_latency_is_at_the_first_epoch_of_any_stage():
    for stage in ("N1", "N2", "N3", "R"):
        s = score_nap(_hyp(("W", 7), (stage, 1), ("W", 40)))
        assert s.sleep_latency_min == 3.5, stage
        assert s.sleep_onset_epoch == 7 and 7 in s.key_epochs
        assert s.complete and not s.problems
    s = score_nap(_hyp(("N2", 50)))
    assert s.sleep_latency_min == 0.0


def test_latency_from_lights_off_and_its_grid():
    # lights off 60 s into the hypnogram: epochs 0-1 are before the nap
    s = score_nap(_hyp(("N2", 2), ("W", 4), ("N1", 45)), lights_off_sec=60.0)
    assert s.first_epoch == 2 and s.sleep_latency_min == 2.0
    assert s.lights_off_sec == 60.0 and s.end_sec == 60.0 + 120.0 + 30.0 + 900.0


@pytest.mark.parametrize(("rem_after_onset_epochs", "soremp"),
                         [(29, True), (30, True), (31, False), (35, False)])
def test_soremp_at_exactly_15_min_counts_and_15_5_does_not(rem_after_onset_epochs, soremp):
    n2 = rem_after_onset_epochs
    s = score_nap(_hyp(("W", 10), ("N2", n2), ("R", 10)))
    assert s.sleep_latency_min == 5.0
    assert s.soremp is soremp
    if soremp:
        assert s.rem_latency_min == n2 / 2.0 and s.rem_epoch == 10 + n2
        assert s.key_epochs == [10, 10 + n2]
    else:  # REM at 15.5 min or later lies after the MSLT nap's end: ignored
        assert s.rem_latency_min is None and s.rem_epoch is None
    assert s.end_sec == 300.0 + 30.0 + 900.0 and s.stop_epoch == 10 + 31


def test_mslt_nap_ends_15_min_after_sleep_onset():
    s = score_nap(_hyp(("W", 4), ("N1", 1), ("N2", 40), ("R", 20)))
    assert s.sleep_latency_min == 2.0
    assert s.end_sec == 120.0 + 30.0 + 900.0
    assert (s.first_epoch, s.stop_epoch) == (0, 4 + 31)
    assert s.rem_latency_min is None and not s.soremp and s.complete


def test_no_sleep_nap_counts_20_min():
    s = score_nap(_hyp(("W", 40)))
    assert s.sleep_latency_min is None and s.latency_for_mean_min == 20.0
    assert s.end_sec == 1200.0 and s.complete and s.key_epochs == []
    # sleep at 20.0 min is after the nap; at 19.5 min it is in it
    assert score_nap(_hyp(("W", 40), ("N2", 40))).sleep_latency_min is None
    assert score_nap(_hyp(("W", 39), ("N2", 40))).sleep_latency_min == 19.5


def test_a_nap_cut_short_is_incomplete():
    s = score_nap(_hyp(("W", 30)))  # 15 min of wake, hypnogram ends
    assert not s.complete and s.latency_for_mean_min is None
    assert "the hypnogram ends 15.0 min after lights off" in s.problems[0]
    s = score_nap(_hyp(("W", 40)), lights_on_sec=600.0)
    assert not s.complete and "lights on 10.0 min" in s.problems[0]
    # sleep found before the end: latency known, the nap still short
    s = score_nap(_hyp(("W", 6), ("N2", 10)))
    assert s.sleep_latency_min == 3.0 and s.latency_for_mean_min == 3.0 and not s.complete


def test_unscored_epochs_before_onset_leave_the_latency_undetermined():
    s = score_nap(_hyp(("W", 3), ("?", 2), ("W", 2), ("N2", 40)))
    assert not s.complete and s.sleep_latency_min == 3.5
    assert any("2 unscored epoch(s) before sleep onset" in p for p in s.problems)


def test_hypnogram_starting_after_lights_off_is_incomplete():
    s = score_nap(_hyp(("W", 4), ("N2", 40), onset_sec=120.0), lights_off_sec=0.0)
    assert s.sleep_latency_min == 4.0 and not s.complete
    assert "starts 120 s after lights off" in s.problems[0]


def test_lights_on_before_lights_off_is_an_error():
    with pytest.raises(ValueError, match=r"lights on \(10 s\) must come after lights off"):
        score_nap(_hyp(("W", 40)), lights_off_sec=20.0, lights_on_sec=10.0)
    with pytest.raises(ValueError, match="protocol must be one of"):
        score_nap(_hyp(("W", 40)), protocol="msl")


# ---------------------------------------------------------------- MWT rules
def test_mwt_two_n1_epochs_are_not_unequivocal_three_are():
    s = score_nap(_hyp(("W", 10), ("N1", 2), ("W", 10), ("N1", 3), ("W", 70)), "mwt")
    assert s.sleep_latency_min == 5.0
    assert s.mwt_unequivocal_latency_min == 11.0
    assert s.unequivocal_epoch == 22 and s.key_epochs == [10, 22, 23, 24]
    assert s.end_sec == 25 * 30.0 and s.complete


@pytest.mark.parametrize("stage", ["N2", "N3", "R"])
def test_mwt_one_epoch_of_another_stage_is_unequivocal(stage):
    s = score_nap(_hyp(("W", 10), ("N1", 2), (stage, 1), ("W", 70)), "mwt")
    assert s.sleep_latency_min == 5.0
    assert s.mwt_unequivocal_latency_min == 6.0  # N1 N1 N2: dated at the N2 epoch
    assert s.end_sec == 13 * 30.0


def test_mwt_without_unequivocal_sleep_ends_at_40_min():
    s = score_nap(_hyp(("W", 20), ("N1", 2), ("W", 57), ("N1", 1), ("N2", 10)), "mwt")
    assert s.sleep_latency_min == 10.0 and s.mwt_unequivocal_latency_min is None
    assert s.end_sec == 2400.0 and s.complete
    assert s.unequivocal_for_mean_min == 40.0 and s.latency_for_mean_min == 10.0
    w = score_nap(_hyp(("W", 80)), "mwt")
    assert w.sleep_latency_min is None and w.latency_for_mean_min == 40.0


def test_mwt_on_a_three_class_hypnogram_needs_three_nrem_epochs():
    hyp = Hypnogram(["W"] * 4 + ["NREM"] * 2 + ["W"] * 2 + ["NREM"] * 3 + ["W"] * 80,
                    n_classes=3)
    s = score_nap(hyp, "mwt")
    assert s.sleep_latency_min == 2.0 and s.mwt_unequivocal_latency_min == 4.0
    assert any("3-class" in p for p in s.problems)


# ---------------------------------------------------------------- the day
def _nap(protocol: str, latency: float | None, soremp: bool = False,
         complete: bool = True) -> NapScore:
    return NapScore(protocol, 0.0, 0.0, sleep_latency_min=latency, soremp=soremp,
                    complete=complete)


def test_mslt_day_summary_and_narcolepsy_criterion():
    naps = [_nap("mslt", 2.0, True), _nap("mslt", 4.5, True), _nap("mslt", None),
            _nap("mslt", 3.5), _nap("mslt", None, complete=False)]
    day = summarise_day(naps, "mslt")
    assert day["latencies_min"] == [2.0, 4.5, 20.0, 3.5, None]
    assert day["mean_sleep_latency_min"] == pytest.approx(30.0 / 4)
    assert (day["n_naps"], day["n_incomplete"], day["n_in_mean"]) == (5, 1, 4)
    assert day["n_soremps"] == 2 and day["narcolepsy_criterion_met"] is True
    # exactly 8.0 min meets it; one SOREMP does not
    eight = [_nap("mslt", 8.0, True), _nap("mslt", 8.0, True)]
    assert summarise_day(eight, "mslt")["narcolepsy_criterion_met"] is True
    one = [_nap("mslt", 2.0, True), _nap("mslt", 2.0)]
    assert summarise_day(one, "mslt")["narcolepsy_criterion_met"] is False
    late = [_nap("mslt", 8.5, True), _nap("mslt", 8.5, True)]
    assert summarise_day(late, "mslt")["narcolepsy_criterion_met"] is False
    assert summarise_day([], "mslt")["narcolepsy_criterion_met"] is None


def test_mwt_day_summary():
    naps = [score_nap(_hyp(("W", 80)), "mwt"),
            score_nap(_hyp(("W", 20), ("N1", 3), ("W", 60)), "mwt")]
    day = summarise_day(naps, "mwt")
    assert day["latencies_min"] == [40.0, 10.0] and day["mean_sleep_latency_min"] == 25.0
    assert day["mean_unequivocal_latency_min"] == 25.0 and "n_soremps" not in day
    with pytest.raises(ValueError, match="scored as"):
        summarise_day(naps, "mslt")


def test_lights_on_15_min_after_onset_by_the_clock_lacks_only_the_last_epoch():
    # sleep onset at 2.5 min, lights on at 17.5 min: the AASM nap ends at 18.0 min
    s = score_nap(_hyp(("W", 5), ("N2", 30)))
    assert s.end_sec == 1080.0 and s.complete and s.sleep_latency_min == 2.5
    assert "REM in the epoch starting 15 min after sleep onset" in s.problems[0]
    # a SOREMP already seen needs no note; two epochs short is incomplete
    s = score_nap(_hyp(("W", 5), ("N2", 10), ("R", 20)))
    assert s.complete and s.soremp and not s.problems
    s = score_nap(_hyp(("W", 5), ("N2", 29)))
    assert not s.complete


# ---------------------------------------------------------------- where the naps are
def test_nap_windows_from_nap_times_annotations_or_the_whole_file():
    import datetime as dt

    import mne

    from hypnoscope.notices import Notices
    from hypnoscope.staging.naps import nap_windows, parse_nap_times

    start = dt.datetime(2020, 1, 2, 8, 55)
    assert parse_nap_times("09:00-09:20, 11:00-11:20") == [("09:00", "09:20"),
                                                           ("11:00", "11:20")]
    notes = Notices()
    got = nap_windows("day.edf", 3 * 3600.0, start, None, "09:00-09:20,600-1800", notes)
    assert [(w.lights_off_sec, w.lights_on_sec, w.how) for w in got] == [
        (300.0, 1500.0, "--naps"), (600.0, 1800.0, "--naps")]
    with pytest.raises(ValueError, match=r"--naps item 1 '09:00': expected LIGHTS_OFF-"):
        parse_nap_times("09:00")
    with pytest.raises(ValueError, match="--naps item 1 13:00-13:20 lies outside day.edf"):
        nap_windows("day.edf", 3600.0, start, None, "13:00-13:20", notes)
    ann = mne.Annotations([60.0, 1260.0, 7000.0, 8000.0], [0, 0, 0, 0],
                          ["Lights off", "Lights on", "LIGHTS OUT", "Sleep stage W"])
    got = nap_windows("day.edf", 9000.0, start, ann, None, notes)
    assert [(w.lights_off_sec, w.lights_on_sec, w.how) for w in got] == [
        (60.0, 1260.0, "annotations"), (7000.0, 9000.0, "annotations")]
    assert any("lights-off annotation at 7000 s has no lights-on" in m
               for m in notes.messages("warning"))
    whole = Notices()
    got = nap_windows("nap.edf", 1500.0, start, None, None, whole)
    assert [(w.lights_off_sec, w.lights_on_sec, w.how) for w in got] == [
        (0.0, 1500.0, "recording")]
    assert [n.code for n in whole] == ["nap-lights-missing"]


def test_epochs_to_check_lists_key_epochs_lowest_confidence_first():
    import numpy as np

    from hypnoscope.staging.naps import epochs_to_check

    codes = [0] * 6 + [1, 2] + [4] * 4 + [2] * 30
    p = np.full((len(codes), 5), 0.0)
    p[np.arange(len(codes)), codes] = 0.9
    p[:, 1] += 0.1
    p[5] = [0.55, 0.45, 0.0, 0.0, 0.0]  # wake, but nearly N1: latency could be earlier
    p[6] = [0.3, 0.7, 0.0, 0.0, 0.0]  # the sleep-onset epoch
    p[8] = [0.0, 0.0, 0.4, 0.0, 0.6]  # the first REM epoch
    hyp = Hypnogram(codes, probabilities=p)
    score = score_nap(hyp)
    rows = epochs_to_check(hyp, score)
    assert [(r["epoch"], r["role"], r["key"]) for r in rows] == [
        (5, "possible earlier sleep", False), (8, "first REM", True),
        (6, "sleep onset", True)]
    assert [r["confidence"] for r in rows] == pytest.approx([0.55, 0.6, 0.7])
    assert rows[0]["probability"] == pytest.approx(0.45) and rows[2]["minute"] == 3.0


# ---------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def nap_day(tmp_path_factory):
    """Two simulated MSLT naps (narcolepsy-like: short latencies, SOREMPs likely), one file
    each, with Lights off/Lights on annotations and their truth."""
    from hypnoscope.simulate.naps import simulate_nap_day

    root = tmp_path_factory.mktemp("napday")
    truth = simulate_nap_day(root, "mslt", profile="narcolepsy-like", seed=3, n_naps=2)
    return root, truth


def test_mslt_command_writes_the_report_of_a_day(nap_day, tmp_path, capsys):
    import csv
    import json

    from hypnoscope.cli import main

    root, truth = nap_day
    out = tmp_path / "out"
    psgs = [str(root / n["psg"]) for n in reversed(truth["naps"])]  # order from the clock
    assert main(["mslt", *psgs, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "mslt_report.json").read_text())
    naps = report["naps"]
    assert [n["nap"] for n in naps] == [1, 2]
    for got, want in zip(naps, truth["naps"], strict=True):
        # lights from the files' annotations, times in clock time and minutes
        assert got["lights_from"] == "annotations"
        assert (got["lights_off"], got["lights_on"]) == (want["lights_off"], want["lights_on"])
        assert got["lights_off_sec"] == want["lights_off_sec"]
        # the rules applied to the staged stages give the numbers reported
        hyp = Hypnogram(got["stages"])
        s = score_nap(hyp, "mslt", 0.0, want["lights_on_sec"] - want["lights_off_sec"])
        assert (got["sleep_latency_min"], got["rem_latency_min"], got["soremp"]) == (
            s.sleep_latency_min, s.rem_latency_min, s.soremp)
        assert got["complete"] == s.complete
        assert {r["epoch"] for r in got["check"] if r["key"]} == set(s.key_epochs)
        assert all(0.0 < r["confidence"] <= 1.0 for r in got["check"])
        # the short-recording model finds sleep onset near the simulated one
        assert abs(got["sleep_latency_min"] - want["sleep_latency_min"]) <= 1.0
    day = report["summary"]
    lat = [n["latency_for_mean_min"] for n in naps]
    assert day["mean_sleep_latency_min"] == pytest.approx(sum(lat) / 2)
    assert day["n_soremps"] == sum(n["soremp"] for n in naps)
    codes = {n["code"] for n in report["notices"]}
    assert "nap-count" in codes and "nap-lights-missing" not in codes
    rows = list(csv.DictReader((out / "mslt_naps.csv").open()))
    assert [float(r["sleep_latency_min"]) for r in rows] == [n["sleep_latency_min"]
                                                            for n in naps]
    html = (out / "mslt_report.html").read_text()
    assert html.count("data:image/png;base64") == 2 and "Check these epochs first" in html
    assert f"mean sleep latency {day['mean_sleep_latency_min']:.1f} min over 2 nap(s)" \
        in printed
    assert f"nap 1 {truth['naps'][0]['lights_off']}: sleep latency" in printed


def test_mslt_command_on_one_recording_with_nap_times(nap_day, tmp_path, capsys):
    import json

    from hypnoscope.cli import main

    root, truth = nap_day
    off = truth["naps"][0]["lights_off"]  # 09:00:00, the recording starts before it
    out = tmp_path / "one"
    psg = str(root / truth["naps"][0]["psg"])
    assert main(["mslt", psg, "--out", str(out), "--protocol", "mwt",
                 "--naps", f"{off[:5]}-09:08,09:06-09:15"]) == 0
    report = json.loads((out / "mwt_report.json").read_text())
    assert [(n["lights_off"], n["lights_on"], n["lights_from"]) for n in report["naps"]] == [
        ("09:00:00", "09:08:00", "--naps"), ("09:06:00", "09:15:00", "--naps")]
    assert [n["duration_min"] for n in report["naps"]] == [8.0, 9.0]
    codes = [n["code"] for n in report["notices"]]
    assert "nap-overlap" in codes and "nap-count" in codes
    assert "mean_unequivocal_latency_min" in report["summary"]
    # --naps names the naps of one recording only
    assert main(["mslt", psg, psg, "--out", str(out), "--naps", "09:00-09:20"]) == 2
    assert "--naps gives the naps of one recording, but 2 were given" in \
        capsys.readouterr().err


def test_unscored_epochs_before_onset_are_key_epochs_to_check():
    import numpy as np

    from hypnoscope.staging.naps import epochs_to_check

    codes = np.array([0, 0, -100, 0, 2] + [2] * 40)
    p = np.zeros((len(codes), 5))
    p[codes >= 0, 2] = 1.0
    p[[0, 1, 3], :] = [0.8, 0.2, 0, 0, 0]
    hyp = Hypnogram(codes, probabilities=p)
    s = score_nap(hyp)
    assert s.key_epochs == [2, 4] and not s.complete
    rows = epochs_to_check(hyp, s)
    assert [(r["epoch"], r["role"], r["confidence"]) for r in rows][:1] == [
        (2, "unscored before sleep onset", 0.0)]


def test_mslt_command_takes_a_folder_and_strict_refuses_a_day_with_warnings(nap_day, tmp_path,
                                                                           capsys):
    from hypnoscope.cli import main

    root, _ = nap_day
    out = tmp_path / "strict"
    assert main(["mslt", str(root), "--out", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "warning(s) in strict mode" in err and "2 nap(s) given; the MSLT has five" in err
    assert not list(out.glob("mslt_*"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["mslt", str(empty), "--out", str(out)]) == 2
    assert f"{empty}: no recording in this folder" in capsys.readouterr().err


def test_lights_on_before_the_end_set_by_a_later_sleep_onset_names_it():
    # sleep onset at 12.5 min puts the MSLT end at 28.0 min; lights on at 26.5 min
    s = score_nap(_hyp(("W", 25), ("N2", 40)), lights_on_sec=26.5 * 60)
    assert s.sleep_latency_min == 12.5 and not s.complete
    assert s.problems == [
        "lights on 26.5 min after lights off, before the protocol ends the nap (28.0 min, "
        "15 min after the sleep onset found at 12.5 min: if the scorer saw sleep earlier the "
        "nap was complete; check the sleep-onset epoch)"]
