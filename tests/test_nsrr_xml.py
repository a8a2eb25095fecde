"""NSRR annotation XML (``*-nsrr.xml`` and Compumedics ``*-profusion.xml``) and the
vendor stage-label variants of the one label table, on files the tests write."""

from __future__ import annotations

import datetime as dt

import pytest

from hypnoscope.cli import main
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.io.nsrr_xml import read_xml_events, read_xml_hypnogram, write_nsrr_xml
from hypnoscope.stages import N1, N2, N3, UNSCORED, R, W


def _event(etype, concept, start, dur, loc=None):
    loc = f"<SignalLocation>{loc}</SignalLocation>" if loc else ""
    return (f"<ScoredEvent><EventType>{etype}</EventType><EventConcept>{concept}"
            f"</EventConcept><Start>{start}</Start><Duration>{dur}</Duration>{loc}"
            "</ScoredEvent>")


def _nsrr(tmp_path, events, name="shhs1-200001-nsrr.xml", epoch="<EpochLength>30</EpochLength>"):
    path = tmp_path / name
    path.write_text('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<PSGAnnotation>'
                    f"<SoftwareVersion>Compumedics</SoftwareVersion>{epoch}<ScoredEvents>"
                    "<ScoredEvent><EventType/><EventConcept>Recording Start Time</EventConcept>"
                    "<Start>0</Start><Duration>600.0</Duration><ClockTime>00.00.00 22.00.00"
                    "</ClockTime></ScoredEvent>" + "".join(events)
                    + "</ScoredEvents></PSGAnnotation>\n")
    return path


STAGES = "Stages|Stages"
#: A night in NSRR form: runs of stages (R&K 4, movement and unscored included), an
#: arousal inside N2 and a desaturation; one epoch (210-240 s) has no stage event.
NSRR_EVENTS = [
    _event(STAGES, "Wake|0", "0.0", "60.0"),
    _event(STAGES, "Stage 1 sleep|1", "60.0", "30.0"),
    _event(STAGES, "Stage 2 sleep|2", "90.0", "60.0"),
    _event("Arousals|Arousals", "Arousal|Arousal ()", "100.5", "12.0", "EEG"),
    _event(STAGES, "Stage 4 sleep|4", "150.0", "30.0"),
    _event(STAGES, "Stage 3 sleep|3", "180.0", "30.0"),
    _event(STAGES, "REM sleep|5", "240.0", "60.0"),
    _event("Respiratory|Respiratory", "SpO2 desaturation|SpO2 desaturation", "250",
           "20.5", "SpO2"),
    _event(STAGES, "Movement|6", "300.0", "30.0"),
    _event(STAGES, "Unscored|9", "330.0", "30.0"),
]


def test_nsrr_xml_stages_events_and_unscored(tmp_path):
    path = _nsrr(tmp_path, NSRR_EVENTS)
    hyp = read_hypnogram(path)
    assert hyp.codes.tolist() == [W, W, N1, N2, N2, N3, N3, UNSCORED, R, R, UNSCORED,
                                  UNSCORED]
    assert hyp.epoch_sec == 30.0 and hyp.onset_sec == 0.0 and hyp.start_time is None
    ev = read_xml_events(path)
    assert ev.to_dict("records") == [
        {"onset": 100.5, "duration": 12.0, "type": "Arousals", "description": "Arousal",
         "channel": "EEG"},
        {"onset": 250.0, "duration": 20.5, "type": "Respiratory",
         "description": "SpO2 desaturation", "channel": "SpO2"}]
    # the stage events are not events, nor is the recording span
    assert "Stage 2 sleep" not in set(ev["description"])
    # a site concept is mapped with label_map first
    odd = _nsrr(tmp_path, [_event(STAGES, "Wake|0", 0, 30), _event(STAGES, "NREM 2|2", 30, 30)],
                name="odd-nsrr.xml")
    assert read_hypnogram(odd, label_map={"NREM 2|2": "N2"}).codes.tolist() == [W, N2]


def test_profusion_xml_stages_and_events(tmp_path):
    path = tmp_path / "shhs1-200001-profusion.xml"
    stages = "".join(f"<SleepStage>{s}</SleepStage>" for s in [0, 0, 1, 2, 2, 3, 4, 5, 5, 6, 9, 0])
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><CMPStudyConfig><EpochLength>30</EpochLength>'
        "<ScoredEvents><ScoredEvent><Name>Arousal ()</Name><Start>95.5</Start>"
        "<Duration>10</Duration><Input>C3</Input></ScoredEvent><ScoredEvent>"
        "<Name>SpO2 desaturation</Name><Start>200</Start><Duration>15.5</Duration>"
        "<Input>SaO2</Input></ScoredEvent></ScoredEvents>"
        f"<SleepStages>{stages}</SleepStages></CMPStudyConfig>")
    hyp = read_hypnogram(path)
    assert hyp.codes.tolist() == [W, W, N1, N2, N2, N3, N3, R, R, UNSCORED, UNSCORED, W]
    assert hyp.onset_sec == 0.0 and hyp.epoch_sec == 30.0
    ev = read_xml_events(path)
    assert ev[["onset", "duration", "description", "channel"]].values.tolist() == [
        [95.5, 10.0, "Arousal ()", "C3"], [200.0, 15.5, "SpO2 desaturation", "SaO2"]]


@pytest.mark.parametrize("body, message", [
    ("<PSGAnnotation><ScoredEvents><ScoredEvent>", r"not well-formed XML at line 1, column "),
    ("<Foo/>", r"root element <Foo>, expected <PSGAnnotation>"),
    ("<PSGAnnotation><EpochLength>30</EpochLength></PSGAnnotation>",
     r"<PSGAnnotation> has no <ScoredEvents> element"),
    ("<PSGAnnotation><EpochLength>30</EpochLength><ScoredEvents>"
     + _event(STAGES, "Wake|0", 0, 30)
     + "<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Stage 2 sleep|2"
       "</EventConcept><Duration>30</Duration></ScoredEvent></ScoredEvents></PSGAnnotation>",
     r"ScoredEvent 2 \('Stage 2 sleep\|2'\) has no <Start> element"),
    ("<PSGAnnotation><EpochLength>30</EpochLength><ScoredEvents>"
     + _event(STAGES, "Wake|0", 0, "thirty") + "</ScoredEvents></PSGAnnotation>",
     r"ScoredEvent 1 \('Wake\|0'\): <Duration> is 'thirty'; expected a non-negative number"),
    ("<PSGAnnotation><EpochLength>30</EpochLength><ScoredEvents>"
     + _event(STAGES, "Stage 7 sleep|7", 0, 30) + "</ScoredEvents></PSGAnnotation>",
     r"unknown sleep-stage concept\(s\) 'Stage 7 sleep\|7' \(ScoredEvent 1 \('Stage 7 "
     r"sleep\|7'\)\)\. Accepted labels"),
    ("<PSGAnnotation><EpochLength>30</EpochLength><ScoredEvents>"
     + _event("Arousals|Arousals", "Arousal|Arousal ()", 0, 10)
     + "</ScoredEvents></PSGAnnotation>", r"no sleep-stage event"),
    ("<PSGAnnotation><EpochLength>0</EpochLength><ScoredEvents>"
     + _event(STAGES, "Wake|0", 0, 30) + "</ScoredEvents></PSGAnnotation>",
     r"<EpochLength> is '0'; expected a positive number of seconds"),
    ("<CMPStudyConfig><EpochLength>30</EpochLength><SleepStages><SleepStage>0</SleepStage>"
     "<SleepStage>7</SleepStage></SleepStages></CMPStudyConfig>",
     r"SleepStage 2: '7' is not a Profusion stage code; expected one of 0, 1, 2, 3, 4, 5, 6, "
     r"9"),
    ("<CMPStudyConfig><EpochLength>30</EpochLength></CMPStudyConfig>",
     r"<CMPStudyConfig> has no <SleepStages> element"),
])
def test_malformed_xml_errors_name_the_element(tmp_path, body, message):
    path = tmp_path / "bad-nsrr.xml"
    path.write_text(body)
    with pytest.raises(ValueError, match=rf"bad-nsrr\.xml: .*{message}"):
        read_xml_hypnogram(path)


def test_cli_stats_on_xml_reports_malformed_file_in_one_line(tmp_path, capsys):
    good = _nsrr(tmp_path, NSRR_EVENTS)
    assert main(["stats", str(good), "--json"]) == 0
    assert '"total_sleep_min": 3.5' in capsys.readouterr().out  # N1+N2x2+N3x2+Rx2
    bad = tmp_path / "bad-nsrr.xml"
    bad.write_text("<PSGAnnotation><ScoredEvents>")
    assert main(["stats", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hypnoscope stats: error: ") and "not well-formed XML" in err
    assert "Traceback" not in err


def test_write_nsrr_xml_round_trip(tmp_path):
    hyp = Hypnogram([W, N1, N2, N2, N3, UNSCORED, R, W], onset_sec=30.0,
                    start_time=dt.datetime(2001, 5, 1, 22, 15))
    events = [{"onset": 95.0, "duration": 11.0, "type": "Arousals", "description": "Arousal",
               "channel": "EEG"}]
    path = write_nsrr_xml(hyp, tmp_path / "x-nsrr.xml", events=events)
    text = path.read_text()
    assert "<EventConcept>Stage 2 sleep|2</EventConcept>" in text
    assert "<ClockTime>00.00.00 22.15.00</ClockTime>" in text
    back = read_hypnogram(path)
    assert back == hyp and back.start_time is None  # NSRR XML carries no date
    assert read_xml_events(path).to_dict("records") == events


#: Vendor variants of EDF+ and TSV exports (one label table: hypnoscope.stages).
VENDOR = [("Stage 2", N2), ("N2", N2), ("Sleep stage N2", N2), ("S2", N2), ("NREM2", N2),
          ("stage n1", N1), ("NREM1", N1), ("NREM3", N3), ("NREM4", N3), ("Stage 4", N3),
          ("REM", R), ("R", R), ("Stage R", R), ("Wake", W), ("W", W), ("Stage W", W),
          ("Stage 2 sleep|2", N2), ("REM sleep|5", R), ("Unscored|9", UNSCORED)]


@pytest.mark.parametrize("label, code", VENDOR)
def test_vendor_label_variants_in_tsv_and_edf(tmp_path, label, code):
    import edfio

    tsv = tmp_path / "h.tsv"
    tsv.write_text(f"onset\tduration\tstage\n0\t30\tW\n30\t30\t{label}\n")
    assert read_hypnogram(tsv).codes.tolist() == [W, code]
    edf = tmp_path / "h-Hypnogram.edf"
    edfio.Edf([], annotations=[edfio.EdfAnnotation(0.0, 30.0, "W"),
                               edfio.EdfAnnotation(30.0, 30.0, label)],
              starttime=dt.time(22, 0)).write(edf)
    assert read_hypnogram(edf).codes.tolist() == [W, code]
