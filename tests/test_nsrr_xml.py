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


# ------------------------------------- NSRR translator XML: ontology concepts, no EventType
def _concept_event(concept, start, dur):
    """A ScoredEvent as the NSRR translator writes it with ontology concepts: no
    <EventType> element at all."""
    return (f"<ScoredEvent><EventConcept>{concept}</EventConcept><Start>{start}</Start>"
            f"<Duration>{dur}</Duration></ScoredEvent>")


#: 240 one-epoch stage events: W 20, N1 10, N2 100, N3 30 + stage 4 10, REM 60, W 10
#: -> W 15 min, N1 5, N2 50, N3 20, REM 30 min (TST 105 min).
SDO_RUNS = [("SDO:WakeState", 20), ("SDO:NonRapidEyeMovementSleep-N1", 10),
            ("SDO:NonRapidEyeMovementSleep-N2", 100), ("SDO:NonRapidEyeMovementSleep-N3", 30),
            ("SDO:NonRapidEyeMovementSleep-N4", 10), ("SDO:RapidEyeMovementSleep", 60),
            ("SDO:WakeState", 10)]
SDO_MINUTES = {"wake_min": 15.0, "n1_min": 5.0, "n2_min": 50.0, "n3_min": 20.0,
               "rem_min": 30.0, "total_sleep_min": 105.0}


def _sdo_events(runs=SDO_RUNS, site_concept=None):
    out, k = [], 0
    for concept, n in runs:
        for _ in range(n):
            out.append(_concept_event(site_concept or concept, f"{30.0 * k}", "30.0"))
            k += 1
    # non-stage events of the same file, no EventType either (the first a made-up
    # concept: any concept that is not a stage is an event)
    out.append(_concept_event("SDO:ArousalFinding", "915.5", "9.0"))
    out.append(_concept_event("SpO2 desaturation|SpO2 desaturation", "2000", "21.0"))
    return out


def _stage_minutes(hyp) -> dict[str, float]:
    from hypnoscope.evaluation.sleepstats import sleep_statistics

    stats = sleep_statistics(hyp)
    return {k: stats[k] for k in SDO_MINUTES}


def test_translator_xml_without_event_type_reads_its_240_stage_events(tmp_path):
    path = _nsrr(tmp_path, _sdo_events())
    hyp = read_hypnogram(path)
    assert hyp.n_epochs == 240 and hyp.onset_sec == 0.0 and hyp.epoch_sec == 30.0
    assert hyp.codes.tolist() == ([W] * 20 + [N1] * 10 + [N2] * 100 + [N3] * 40 + [R] * 60
                                  + [W] * 10)
    assert _stage_minutes(hyp) == SDO_MINUTES
    ev = read_xml_events(path)
    assert ev[["onset", "duration", "description"]].values.tolist() == [
        [915.5, 9.0, "SDO:ArousalFinding"], [2000.0, 21.0, "SpO2 desaturation"]]


def test_sro_concepts_read_the_same(tmp_path):
    sro = {"SDO:WakeState": "SRO:Wake", "SDO:NonRapidEyeMovementSleep-N1": "SRO:Stage1Sleep",
           "SDO:NonRapidEyeMovementSleep-N2": "SRO:Stage2Sleep",
           "SDO:NonRapidEyeMovementSleep-N3": "SRO:Stage3Sleep",
           "SDO:NonRapidEyeMovementSleep-N4": "SRO:Stage4Sleep",
           "SDO:RapidEyeMovementSleep": "SRO:RapidEyeMovement"}
    runs = [(sro[c], n) for c, n in SDO_RUNS]
    assert _stage_minutes(read_hypnogram(_nsrr(tmp_path, _sdo_events(runs)))) == SDO_MINUTES


def test_label_map_rescues_site_concepts_without_event_type(tmp_path):
    # a site's own concept for every epoch: not a stage until mapped
    runs = [("Stage N2 (AASM)", 240)]
    path = _nsrr(tmp_path, _sdo_events(runs))
    with pytest.raises(ValueError) as exc:
        read_hypnogram(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{path}: no sleep-stage event found")
    assert "'Stage N2 (AASM)'" in msg and "--label-map" in msg
    hyp = read_hypnogram(path, label_map="Stage N2 (AASM)=N2")
    assert hyp.codes.tolist() == [N2] * 240
    # and the ontology's own concepts can be renamed too (here: N4 read as unscored)
    hyp = read_hypnogram(_nsrr(tmp_path, _sdo_events(), name="b.xml"),
                         label_map={"SDO:NonRapidEyeMovementSleep-N4": "?"})
    assert int((hyp.codes == N3).sum()) == 30 and int((hyp.codes == UNSCORED).sum()) == 10


def test_unknown_ontology_stage_concept_is_an_error_not_an_event(tmp_path):
    runs = [("SDO:WakeState", 2), ("SDO:NonRapidEyeMovementSleep-N5", 1)]
    path = _nsrr(tmp_path, _sdo_events(runs))
    with pytest.raises(ValueError, match=r"unknown sleep-stage concept\(s\) "
                                         r"'SDO:NonRapidEyeMovementSleep-N5' \(ScoredEvent 4"):
        read_hypnogram(path)


def test_cli_stats_on_translator_xml_with_label_map(tmp_path, capsys):
    import json

    path = _nsrr(tmp_path, _sdo_events())
    assert main(["stats", str(path), "--json", "--strict"]) == 0
    stats = json.loads(capsys.readouterr()[0])
    assert {k: stats[k] for k in SDO_MINUTES} == SDO_MINUTES
    site = _nsrr(tmp_path, _sdo_events([("NREM-2", 240)]), name="site.xml")
    assert main(["stats", str(site), "--json"]) == 2
    assert "--label-map" in capsys.readouterr()[1]
    assert main(["stats", str(site), "--json", "--label-map", "NREM-2=N2"]) == 0
    assert json.loads(capsys.readouterr()[0])["n2_min"] == 120.0
