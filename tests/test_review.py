"""``hypnoscope review``'s backend on a short simulated night (SIMULATED signals), staged by
the project's own staging: the night, pages (values against the file's samples and the
whole-night filter), scoring, undo, position, the summary's agreement and statistics, the
reviewed scoring in all three formats, reopening, and the automatic files untouched."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from hypnoscope.hypnogram import Hypnogram  # noqa: E402
from hypnoscope.io.hypnograms import read_hypnogram  # noqa: E402
from hypnoscope.io.nsrr_xml import read_xml_events, read_xml_hypnogram  # noqa: E402
from hypnoscope.review.app import create_app  # noqa: E402
from hypnoscope.review.session import LOW_CONFIDENCE, ReviewSession, minmax_decimate  # noqa: E402

TOKEN = "test-token"
PORT = 8765
#: The simulated night: 40 epochs (20 min) with every stage.
CODES = [0] * 4 + [1] * 2 + [2] * 10 + [3] * 6 + [2] * 4 + [4] * 6 + [0] * 2 + [2] * 6


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A simulated recording and the review folder that opening it stages."""
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    root = tmp_path_factory.mktemp("review")
    raw = simulate_night(Hypnogram(np.array(CODES)), seed=3, mode="telemetry")
    psg, _ = write_sleepedf_pair(raw, None, root / "rec", "SC4001E0")
    session = ReviewSession.open(psg, scorer="Ann Example")  # staged into <stem>_review/
    session.close()
    return psg, root / "rec" / "SC4001E0_review"


@pytest.fixture
def folder(staged, tmp_path):
    """A fresh copy of the staged output folder (each test reviews its own)."""
    out = tmp_path / "out"
    shutil.copytree(staged[1], out)
    return out


def _client(session):
    return TestClient(create_app(session, TOKEN, port=PORT), base_url=f"http://127.0.0.1:{PORT}",
                      headers={"X-Review-Token": TOKEN})


def test_opening_a_recording_stages_it_once(staged):
    psg, out = staged
    names = sorted(p.name for p in out.iterdir())
    assert names == ["SC4001E0.hypnogram.edf", "SC4001E0.hypnogram.tsv",
                     "SC4001E0.report.html", "SC4001E0.report.json"]
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    again = ReviewSession.open(psg, out=out)  # the scoring is there: not staged again
    again.close()
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert again.recording == psg and again.stem == "SC4001E0"


def test_clock_pieces_of_a_recording_with_gaps():
    from hypnoscope.review.session import _clock_pieces

    assert _clock_pieces([]) == [(0.0, np.inf, 0.0)]
    # clock 0-100 s is file 0-100 s; 130-200 s is file 100-170 s; after 260 s, file - 90 s
    assert _clock_pieces([(200.0, 260.0), (100.0, 130.0)]) == [
        (0.0, 100.0, 0.0), (130.0, 200.0, 30.0), (260.0, np.inf, 90.0)]


def test_night(folder):
    s = ReviewSession.open(folder)
    auto = read_hypnogram(folder / "SC4001E0.hypnogram.tsv")
    night = _client(s).get("/api/night").json()
    assert night["n_epochs"] == 40 and night["epoch_sec"] == 30.0
    assert night["start_time"] == "1989-04-24T22:30:00"
    assert night["stage_names"] == ["W", "N1", "N2", "N3", "R"]
    assert [(c["name"], c["role"], c["default_filter"]) for c in night["channels"]] == [
        ("EEG Fpz-Cz", "eeg", [0.3, 35.0]), ("EEG Pz-Oz", "eeg", [0.3, 35.0]),
        ("EOG horizontal", "eog", [0.3, 15.0]), ("EMG submental", "emg", [10.0, 45.0])]
    assert night["auto"] == auto.labels and night["reviewed"] == [None] * 40
    assert np.allclose(night["confidence"], auto.confidence, atol=1e-4)
    assert np.allclose(night["probabilities"], auto.probabilities, atol=1e-4)
    assert night["position"] == 0 and night["scorer"] is None
    report = json.loads((folder / "SC4001E0.report.json").read_text())
    assert night["model"] == report["model"]["name"] == "default"
    assert [n["code"] for n in night["notices"]] == [n["code"] for n in report["notices"]]
    assert "short-recording" in {n["code"] for n in night["notices"]}
    # the queue: lowest confidence first; exactly the flagged, unsure or transition epochs
    queue = night["queue"]
    conf = [q["confidence"] for q in queue]
    assert conf == sorted(conf)
    codes = auto.codes
    expected = set()
    for e in range(40):
        trans = (e > 0 and codes[e] != codes[e - 1]) or (e < 39 and codes[e] != codes[e + 1])
        if auto.confidence[e] < LOW_CONFIDENCE or trans or auto.quality[e] != "ok":
            expected.add(e)
    assert {q["epoch"] for q in queue} == expected and expected
    for q in queue:
        assert q["reason"] == q["reasons"][0]
        assert (q["reason"] == "low confidence") == (auto.confidence[q["epoch"]]
                                                     < LOW_CONFIDENCE)


def test_minmax_decimation_keeps_the_envelope_in_time_order():
    x = np.array([np.arange(10.0), -np.arange(10.0)])
    assert np.array_equal(minmax_decimate(x, 4), [[0, 4, 5, 9], [0, -4, -5, -9]])
    y = np.arange(6.0)[None]
    assert minmax_decimate(y, 10) is y  # short enough: as it is


def test_page_values(folder, staged):
    import edfio

    from hypnoscope.signal.filters import bandpass

    s = ReviewSession.open(folder)
    c = _client(s)
    edf = edfio.read_edf(staged[0])
    fpz = edf.get_signal("EEG Fpz-Cz").data  # µV, 100 Hz
    none = json.dumps({ch.name: None for ch in s.channels})
    page = c.get("/api/page/3", params={"filters": none}).json()
    assert page["epoch"] == 3 and page["n"] == 1 and page["t0_sec"] == 90.0
    data = np.array(page["channels"][0]["data"])
    seg = fpz[9000:12000]
    assert len(data) == 2000 and page["channels"][0]["sfreq"] == pytest.approx(2000 / 30)
    assert data.max() == pytest.approx(seg.max(), abs=0.006)
    assert data.min() == pytest.approx(seg.min(), abs=0.006)
    assert np.allclose(data, minmax_decimate(seg[None])[0], atol=0.006)
    # the default filter on the page = the same filter over the whole night, there
    page = c.get("/api/page/20", params={"n": 2}).json()
    whole = bandpass(fpz[None], 100.0, 0.3, 35.0)[0][60000:66000]
    assert page["channels"][0]["filter"] == [0.3, 35.0]
    assert np.allclose(page["channels"][0]["data"], minmax_decimate(whole[None])[0], atol=0.011)
    # the last epoch: the margin past the end is not there, the page is
    assert len(c.get("/api/page/39").json()["channels"][3]["data"]) == 2000
    assert c.get("/api/page/40").status_code == 404
    assert c.get("/api/page/0", params={"filters": '{"EEG Fpz-Cz": [5, 1]}'}).status_code == 400
    assert c.get("/api/page/0", params={"filters": '{"nope": [1, 5]}'}).status_code == 400
    assert c.get("/api/page/0", params={"filters": "{oops"}).status_code == 400
    assert c.get("/api/page/0", params={"n": 11}).status_code == 400


def test_score_undo_and_the_saved_scoring(folder):
    auto_before = {p.name: p.read_bytes() for p in folder.iterdir()}
    s = ReviewSession.open(folder, scorer="Ann Example")
    c = _client(s)
    auto = s.auto.labels
    other = {e: next(x for x in ("N3", "R", "W") if x != auto[e]) for e in (5, 6, 7)}
    for e, stage in other.items():
        r = c.post("/api/score", json={"epoch": e, "stage": stage}).json()
        assert r["epoch"] == e and r["stage"] == stage
    assert r["reviewed_count"] == 3 and len(r["saved"]) == 4
    r = c.post("/api/score", json={"epoch": 9, "stage": "W", "scorer": "Bo Second"}).json()
    assert r["reviewed_count"] == 4
    r = c.post("/api/undo").json()  # takes back epoch 9
    assert (r["epoch"], r["stage"], r["reviewed_count"]) == (9, None, 3)
    expected = list(auto)
    for e, stage in other.items():
        expected[e] = stage
    for path in (folder / "SC4001E0.reviewed.tsv", folder / "SC4001E0.reviewed.edf"):
        assert read_hypnogram(path).labels == expected, path
    assert read_xml_hypnogram(folder / "SC4001E0.reviewed.xml").labels == expected
    # the scorer's name and time in every format
    tsv = (folder / "SC4001E0.reviewed.tsv").read_text().splitlines()
    assert tsv[0].startswith("# hypnoscope review of SC4001E0-PSG.edf: reviewed by Ann Example")
    header = tsv[2].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in tsv[3:]]
    assert [r["scorer"] for r in rows[4:10]] == ["automatic"] + ["Ann Example"] * 3 + [
        "automatic"] * 2
    assert rows[5]["scored_utc"].endswith("+00:00") and rows[9]["scored_utc"] == ""
    import edfio

    edf = edfio.read_edf(folder / "SC4001E0.reviewed.edf")
    assert edf.recording.investigator_technician_code == "Ann_Example"
    events = read_xml_events(folder / "SC4001E0.reviewed.xml")
    assert any("reviewed by Ann Example" in d for d in events["description"])
    state = json.loads((folder / "SC4001E0.review.json").read_text())
    assert state["scorer"] == "Bo Second" and sorted(state["reviewed"]) == ["5", "6", "7"]
    assert state["reviewed"]["6"]["scorer"] == "Ann Example" and len(state["history"]) == 3
    # the automatic outputs are untouched, byte for byte
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.name in auto_before}
    assert after == auto_before
    # refused: unknown stage, epoch out of range, nothing to undo
    assert c.post("/api/score", json={"epoch": 1, "stage": "N4"}).status_code == 400
    assert c.post("/api/score", json={"epoch": 40, "stage": "W"}).status_code == 400
    for bad in (1.5, True, None, [1]):
        assert c.post("/api/score", json={"epoch": bad, "stage": "W"}).status_code == 400
    assert c.post("/api/score", json={"epoch": 1, "stage": "W", "scorer": "a#b"}).status_code \
        == 400
    for _ in range(3):
        assert c.post("/api/undo").status_code == 200
    assert c.post("/api/undo").status_code == 409
    assert read_hypnogram(folder / "SC4001E0.reviewed.tsv").labels == auto


def test_a_scorer_name_is_needed(folder):
    c = _client(ReviewSession.open(folder))
    r = c.post("/api/score", json={"epoch": 1, "stage": "W"})
    assert r.status_code == 400 and "scorer" in r.json()["detail"]
    assert not (folder / "SC4001E0.review.json").exists()


def test_reopening_continues_where_the_scorer_stopped(folder):
    c = _client(ReviewSession.open(folder, scorer="Ann"))
    auto = c.get("/api/night").json()["auto"]
    c.post("/api/score", json={"epoch": 2, "stage": "N1"})
    c.post("/api/score", json={"epoch": 30, "stage": "N3"})
    assert c.post("/api/position", json={"epoch": 31}).json() == {"position": 31}
    assert c.post("/api/position", json={"epoch": 99}).status_code == 400
    again = _client(ReviewSession.open(folder))
    night = again.get("/api/night").json()
    assert night["position"] == 31 and night["scorer"] == "Ann"
    assert night["reviewed"][2] == "N1" and night["reviewed"][30] == "N3"
    assert sum(x is not None for x in night["reviewed"]) == 2
    r = again.post("/api/undo").json()  # the history goes on: epoch 30 comes back
    assert (r["epoch"], r["stage"]) == (30, None)
    assert read_hypnogram(folder / "SC4001E0.reviewed.tsv").labels[30] == auto[30]


def test_summary(folder):
    from sklearn.metrics import cohen_kappa_score

    from hypnoscope.evaluation.sleepstats import sleep_statistics

    s = ReviewSession.open(folder, scorer="Ann")
    c = _client(s)
    empty = c.get("/api/summary").json()
    assert empty["reviewed_epochs"] == 0 and empty["agreement"] is None
    assert empty["stats"]["automatic"] == empty["stats"]["reviewed"]
    auto = s.auto.codes.copy()
    names = ["W", "N1", "N2", "N3", "R"]
    agree = [0, 1, 12, 18, 30]
    change = {14: 3, 28: 2, 38: 0}
    for e in agree:
        c.post("/api/score", json={"epoch": e, "stage": names[auto[e]]})
    for e, code in change.items():
        c.post("/api/score", json={"epoch": e, "stage": names[code]})
    summ = c.get("/api/summary").json()
    assert summ["reviewed_epochs"] == 8
    a = summ["agreement"]
    ep = agree + list(change)
    truth = [auto[e] for e in agree] + list(change.values())
    pred = [auto[e] for e in ep]
    expected_acc = np.mean(np.array(truth) == np.array(pred))
    assert a["accuracy"] == pytest.approx(expected_acc) and a["n_epochs"] == 8
    assert a["changed"] == sum(auto[e] != v for e, v in change.items())
    assert a["kappa"] == pytest.approx(cohen_kappa_score(truth, pred))
    cm = np.zeros((5, 5), int)
    for t, p in zip(truth, pred, strict=True):
        cm[t, p] += 1
    assert a["confusion"] == cm.tolist()
    reviewed = auto.copy()
    for e, code in change.items():
        reviewed[e] = code
    stats = sleep_statistics(Hypnogram(reviewed))
    got = summ["stats"]["reviewed"]
    for key in ("total_sleep_min", "n3_min", "wake_min", "sleep_efficiency_pct"):
        assert got[key] == pytest.approx(stats[key]), key
    assert summ["stats"]["automatic"]["total_sleep_min"] == pytest.approx(
        sleep_statistics(Hypnogram(auto))["total_sleep_min"])


def test_output_folder_errors(tmp_path, folder):
    with pytest.raises(ValueError, match="no \\*.hypnogram.tsv"):
        ReviewSession.open(tmp_path)  # an empty folder
    with pytest.raises(FileNotFoundError, match="no such recording"):
        ReviewSession.open(tmp_path / "nothing.edf")
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    shutil.copy(other / "SC4001E0.hypnogram.tsv", other / "SC4002E0.hypnogram.tsv")
    with pytest.raises(ValueError, match="scorings of 2 recordings"):
        ReviewSession.open(other)


def test_cli_refuses_a_bad_port(folder, capsys):
    from hypnoscope.cli import main

    assert main(["review", str(folder), "--port", "70000"]) == 2
    assert "--port must be" in capsys.readouterr().err
    assert main(["review", str(folder), "--model", "eeg2"]) == 2
    assert "--model stages a recording file" in capsys.readouterr().err


def test_the_command_serves_until_ctrl_c(folder):
    """``hypnoscope review FOLDER`` prints the URL, answers on it, and stops on Ctrl-C."""
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "hypnoscope", "review", str(folder),
                             "--port", "0", "--scorer", "Ann"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:
            m = re.match(r"open (http://127\.0\.0\.1:\d+/\?token=[\w-]+)$", line.strip())
            if m:
                url = m.group(1)
                break
        assert url is not None
        api = url.replace("/?token=", "/api/night?token=")
        for _ in range(50):  # the URL is printed as the server starts
            try:
                with urllib.request.urlopen(api, timeout=5) as r:
                    night = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.1)
        assert night["n_epochs"] == 40 and night["scorer"] == "Ann"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "review server stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_mixed_rate_recording(tmp_path):
    """A Sleep-EDF cassette layout (EMG envelope, respiration, temperature and marker at
    1 Hz beside 100-Hz EEG/EOG) opened with a given automatic scoring: roles, no default
    filter on the 1-Hz channels, and their pages as MNE reads the whole file (lazily read,
    with a margin, without MNE's mixed-rate warning)."""
    import warnings

    import mne

    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    raw = simulate_night(Hypnogram(np.array(CODES)), seed=5)  # cassette mode
    psg, hyp_path = write_sleepedf_pair(raw, None, tmp_path, "SC4011E0")
    auto = tmp_path / "SC4011E0.hypnogram.tsv"
    read_hypnogram(hyp_path).to_tsv(auto)
    s = ReviewSession(psg, auto, tmp_path, "SC4011E0")
    assert [(c.name, c.role, c.sfreq, c.default_filter) for c in s.channels[3:]] == [
        ("EMG submental", "emg", 1.0, (None, None)),
        ("Resp oro-nasal", "other", 1.0, (None, None)),
        ("Temp rectal", "other", 1.0, (None, None)),
        ("Event marker", "other", 1.0, (None, None))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = s.page(5, filters={c.name: None for c in s.channels})
    full = mne.io.read_raw_edf(psg, preload=True, verbose="error").get_data(
        picks=["EMG submental", "Temp rectal"])[:, 15000:18000]
    emg = np.array(page["channels"][3]["data"])
    want = minmax_decimate(full * np.array([[1e6], [1.0]]))
    assert np.allclose(emg, want[0], rtol=0.03, atol=0.3)
    assert np.allclose(page["channels"][5]["data"], want[1], atol=0.01)


def test_corrections_reach_hypnoscope_adapt(staged, tmp_path):
    """A night corrected in the review app is a reviewed night for ``hypnoscope adapt``:
    found in the recording's review folder, read with the corrected stages."""
    from hypnoscope.models import make_model
    from hypnoscope.models.adapt import load_reviewed_nights, reviewed_pairs

    psg = staged[0]
    rec = tmp_path / "lab"
    rec.mkdir()
    shutil.copy(psg, rec / psg.name)
    session = ReviewSession.open(rec / psg.name, scorer="Ann Example")  # staged here
    auto = session.reviewed_hypnogram().codes.copy()
    for e, stage in ((5, "N3"), (6, "R"), (30, "W")):
        session.score(e, stage)
    session.close()
    pairs, skipped = reviewed_pairs(rec)
    assert [(p.name, s.relative_to(rec).as_posix()) for p, s in pairs] == [
        (psg.name, "SC4001E0_review/SC4001E0.reviewed.tsv")] and skipped == []
    model = make_model("lightgbm", n_estimators=5)
    model.input_kind_ = "features"
    # by default only the epochs a person scored: the automatic rest is not learnt from
    (night,) = load_reviewed_nights(rec, model)
    y = np.asarray(night.y)
    assert np.flatnonzero(y >= 0).tolist() == [5, 6, 30] and y[[5, 6, 30]].tolist() == [3, 4, 0]
    assert night.meta["reviewed_epochs"] == 3
    # --all-epochs: the automatic stages count as accepted
    (night,) = load_reviewed_nights(rec, model, all_epochs=True)
    want = auto.copy()
    want[[5, 6, 30]] = [3, 4, 0]
    y = np.asarray(night.y)
    scored = y >= 0  # epochs the reader finds unusable are left out of adapting
    assert len(y) >= 31 and scored.mean() > 0.8 and y[[5, 6, 30]].tolist() == [3, 4, 0]
    assert y[scored].tolist() == want[: len(y)][scored].tolist()
    # a review that scored nothing: a clear refusal, not an adaptation on the model's own
    tsv = rec / "SC4001E0_review" / "SC4001E0.reviewed.tsv"
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join(lines[:3] + [ln.rsplit("\t", 2)[0] + "\tautomatic\t"
                                          for ln in lines[3:]]) + "\n")
    with pytest.raises(ValueError, match="nobody reviewed an epoch of it.*--all-epochs"):
        load_reviewed_nights(rec, model)


def test_pages_show_the_units_staging_fixed(tmp_path):
    """A recording in volts under a µV header: staging rescales it (the units rule) and the
    review pages show the same µV as the correctly written file."""
    import datetime as dt

    import edfio

    from hypnoscope.simulate import simulate_night

    raw = simulate_night(Hypnogram(np.array(CODES)), seed=3, mode="telemetry")
    names = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    uv = raw.get_data(picks=names) * 1e6
    paths = []
    for name, scale in (("good", 1.0), ("volts", 1e-6)):  # volts: header still µV
        sigs = [edfio.EdfSignal(x * scale, sampling_frequency=raw.info["sfreq"], label=ch,
                                physical_dimension="uV",
                                physical_range=(-1.5 * np.abs(x).max() * scale,
                                                1.5 * np.abs(x).max() * scale))
                for x, ch in zip(uv, names, strict=True)]
        paths.append(tmp_path / f"{name}.edf")
        edfio.Edf(sigs, starttime=dt.time(22, 0)).write(paths[-1])
    s_good, s_bad = ReviewSession.open(paths[0]), ReviewSession.open(paths[1])
    factors = s_bad.report["recording"]["unit_factors"]
    assert {k: round(v) for k, v in factors.items()} == {ch: 10**6 for ch in names}
    assert s_good.report["recording"]["unit_factors"] == {}
    none = {ch.name: None for ch in s_good.channels}
    a, b = s_good.page(5, filters=none), s_bad.page(5, filters=none)
    for ca, cb in zip(a["channels"], b["channels"], strict=True):
        x, y = np.array(ca["data"]), np.array(cb["data"])
        assert np.std(x) > 5 and np.percentile(np.abs(x - y), 99) < 0.1  # EDF quantisation
    s_good.close()
    s_bad.close()
