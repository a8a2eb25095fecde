"""Signal quality in staging, normalisation without bad epochs, night boundaries, and
notices in the report (issue 11).

The night of ``hypnoscope demo`` is simulated once per module (the real Sleep-EDF
hypnogram SC4001EC shipped with the package, cropped to the sleep period +-30 min,
seed 0, ~2 s); the 7-h tests use its first 840 epochs and the shorter tests snippets
of it. The 24-h test simulates the whole cassette recording (a night inside a day of
wake) on its own.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings

import matplotlib

matplotlib.use("Agg")

import mne  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hypnoscope.cli.demo import demo_hypnogram_path  # noqa: E402
from hypnoscope.evaluation.sleepstats import resolve_time, sleep_statistics  # noqa: E402
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram  # noqa: E402
from hypnoscope.io.psg import PSGRecording  # noqa: E402
from hypnoscope.notices import Notices  # noqa: E402
from hypnoscope.signal.bandpower import BandPowerNight  # noqa: E402
from hypnoscope.stages import UNSCORED  # noqa: E402
from hypnoscope.staging.pipeline import (  # noqa: E402
    OUTSIDE_SPAN,
    SignalQualityError,
    main_sleep_period,
    stage_recording,
)
from hypnoscope.viz.report import write_report  # noqa: E402

FS = 100.0
SPE = int(30 * FS)  # samples per epoch
CHANNELS = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
TYPES = ["eeg", "eeg", "eog", "emg"]
#: The 7-h demo night (the first 840 epochs of the simulated night).
NIGHT = slice(0, 840)
#: The hour in the middle of the 7-h night that the defects replace (epochs 360-480).
HOUR = slice(360, 480)


def _simulate(truth: Hypnogram):
    """(truth, µV data (4, n), start time) simulated from ``truth``, seed 0."""
    from hypnoscope.simulate import simulate_night

    raw = simulate_night(truth, seed=0, mode="telemetry")
    return truth, (raw.get_data() * 1e6).astype(np.float32), truth.start_time


@pytest.fixture(scope="module")
def day():
    """The demo night (SC4001EC cropped to the sleep period +-30 min), simulated."""
    return _simulate(read_hypnogram(demo_hypnogram_path()).crop_to_sleep(30.0))


def _raw(data_uv: np.ndarray, start: dt.datetime, names=CHANNELS, types=TYPES):
    raw = mne.io.RawArray(np.asarray(data_uv, float) * 1e-6,
                          mne.create_info(list(names), FS, list(types)), verbose="error")
    raw.set_meas_date(start.replace(tzinfo=dt.timezone.utc))
    return raw


def _cut(day, epochs: slice):
    """(truth codes, µV data, start) of some epochs of the simulated night."""
    truth, data, start = day
    seg = data[:, epochs.start * SPE: epochs.stop * SPE].copy()
    return truth.codes[epochs], seg, start + dt.timedelta(seconds=30 * epochs.start)


def _accuracy(truth: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    m = mask & (truth >= 0) & (pred >= 0)
    return float((truth[m] == pred[m]).mean())


@pytest.fixture(scope="module")
def night(day):
    """The 7-h night, staged clean: (truth, data, start, result)."""
    truth, data, start = _cut(day, NIGHT)
    return truth, data, start, stage_recording(_raw(data, start))


def _clean_hours() -> np.ndarray:
    mask = np.ones(NIGHT.stop - NIGHT.start, dtype=bool)
    mask[HOUR] = False
    return mask


# ------------------------------------------------------------- bad epochs, 7-h night
def test_clean_night_is_staged_with_quality_labels(night):
    truth, _, _, res = night
    hyp = res.hypnogram
    assert hyp.n_epochs == 840 and len(hyp.quality) == 840
    assert _accuracy(truth, hyp.codes, np.ones(840, bool)) > 0.80
    # a clean night loses (almost) nothing to the quality check
    assert res.info["quality"]["unscored_epochs"] <= 2
    assert sum(q == "ok" for q in hyp.quality) >= 838
    assert res.info["quality"]["channels_used"] == CHANNELS[:3]
    assert res.info["span"]["source"] == "recording"  # 7 h: no automatic crop
    assert (res.info["span"]["start_epoch"], res.info["span"]["stop_epoch"]) == (0, 840)
    assert not res.notices.warnings


def test_noisy_hour_is_unscored_and_spares_the_clean_hours(night):
    """One hour of 800-µV noise on EEG and EOG: that hour is unscored (not wake at
    confidence 1, as before) and the clean hours keep the accuracy of the clean night
    (main before the change: 0.83 -> 0.56)."""
    truth, data, start, clean = night
    noisy = data.copy()
    rng = np.random.default_rng(1)
    s0, s1 = HOUR.start * SPE, HOUR.stop * SPE
    noisy[:3, s0:s1] += rng.normal(0.0, 800.0, (3, s1 - s0)).astype(np.float32)
    res = stage_recording(_raw(noisy, start))
    hyp = res.hypnogram
    assert (hyp.codes[HOUR] == UNSCORED).all()
    assert (hyp.confidence[HOUR] == 0).all() and (hyp.probabilities[HOUR] == 0).all()
    assert all("amplitude:EEG Fpz-Cz,EEG Pz-Oz,EOG horizontal" in q
               for q in hyp.quality[HOUR.start:HOUR.stop])
    clean_hours = _clean_hours()
    assert (hyp.codes[clean_hours] == UNSCORED).sum() <= 3
    acc_clean = _accuracy(truth, clean.hypnogram.codes, clean_hours)
    acc_noisy = _accuracy(truth, hyp.codes, clean_hours)
    assert acc_noisy == pytest.approx(acc_clean, abs=0.02)
    bad = [n for n in res.notices if n.code == "bad-epochs"]
    assert len(bad) == 1 and bad[0].severity == "warning"
    k = res.info["quality"]["unscored_epochs"]
    assert 120 <= k <= 123 and f"{k} of 840 epochs" in bad[0].message
    # sleep statistics ignore unscored epochs: TST counts the scored sleep epochs only
    stats = res.sleep_statistics()
    assert stats["total_sleep_min"] == pytest.approx(0.5 * (hyp.codes > 0).sum())
    assert stats["time_in_bed_min"] == pytest.approx(0.5 * 840)
    # a caller's PSGRecording gets the same stages and keeps its samples (the bad hour
    # is bridged in a copy; a recording read by staging itself is bridged in place)
    from hypnoscope.io.psg import read_psg

    rec = read_psg(_raw(noisy, start), include_emg=False)
    before = rec.data.copy()
    assert np.array_equal(stage_recording(rec).hypnogram.codes, hyp.codes)
    assert np.array_equal(rec.data, before)
    # without the quality check the noisy hour spoils the rest of the night
    unchecked = stage_recording(_raw(noisy, start), check_quality=False)
    assert _accuracy(truth, unchecked.hypnogram.codes, clean_hours) < acc_clean - 0.1
    assert unchecked.info["quality"]["checked"] is False


def test_flat_hour_is_unscored_not_n1(night):
    truth, data, start, clean = night
    flat = data.copy()
    flat[:3, HOUR.start * SPE: HOUR.stop * SPE] = 0.0
    res = stage_recording(_raw(flat, start))
    hyp = res.hypnogram
    assert (hyp.codes[HOUR] == UNSCORED).all()
    assert all(q.startswith("flat:") for q in hyp.quality[HOUR.start:HOUR.stop])
    clean_hours = _clean_hours()
    assert _accuracy(truth, hyp.codes, clean_hours) == pytest.approx(
        _accuracy(truth, clean.hypnogram.codes, clean_hours), abs=0.02)


def test_flat_eeg_all_night_fails_naming_the_channel(day):
    _, data, start = _cut(day, slice(40, 160))
    data[0] = 0.0
    with pytest.raises(SignalQualityError) as err:  # the model named: it needs both EEG
        stage_recording(_raw(data, start), model="default")
    msg = str(err.value)
    assert "EEG channel 'EEG Fpz-Cz' is flat for 100 % of the night" in msg
    assert "two EEG channels" in msg and "EEG Pz-Oz" in msg


def test_bad_channel_is_dropped_when_another_can_replace_it(day):
    _, data, start = _cut(day, slice(40, 160))
    four = np.vstack([data[:1], data[:3]])  # a frontal EEG copy: "EEG Fz-Cz"
    four[1] = 0.0  # Fpz-Cz flat all night
    names = ["EEG Fz-Cz", "EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    res = stage_recording(_raw(four, start, names, ["eeg", "eeg", "eeg", "eog"]))
    assert list(res.info["channels"]) == ["EEG Fz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    assert list(res.info["quality"]["channels_dropped"]) == ["EEG Fpz-Cz"]
    dropped = [n for n in res.notices if n.code == "channel-dropped"]
    assert len(dropped) == 1 and dropped[0].channel == "EEG Fpz-Cz"
    assert "flat for 100 % of the night" in dropped[0].message
    assert "staged from EEG Fz-Cz, EEG Pz-Oz, EOG horizontal" in dropped[0].message
    assert (res.hypnogram.codes >= 0).mean() > 0.95


def test_no_usable_epoch_fails_clearly(day):
    _, data, start = _cut(day, slice(40, 100))
    # each channel flat for less than half of the night (so none is dropped), but one of
    # them in every epoch
    data[0, : 25 * SPE] = 0.0
    data[1, 25 * SPE: 50 * SPE] = 0.0
    data[2, 50 * SPE:] = 0.0
    with pytest.raises(SignalQualityError, match="no epoch .* has usable signal"):
        stage_recording(_raw(data, start))


# ------------------------------------------------------------- normalisation exclusion
def test_window_std_leaves_out_excluded_epochs():
    rng = np.random.default_rng(0)
    n_ep, n_t = 40, 50
    x = rng.normal(size=(n_ep, 2, n_t))
    x[10:15] *= 100.0  # a bad stretch
    night = BandPowerNight(band_powers=np.ones((n_ep, 2, 5)), sums=x.sum(-1),
                           sq_sums=(x ** 2).sum(-1), peak_to_peak=np.ptp(x, -1),
                           n_times=n_t, onsets_sec=np.arange(n_ep) * 30.0,
                           ch_names=["a", "b"], roles=["eeg", "eog"])
    excl = np.zeros(n_ep, bool)
    excl[10:15] = True
    good = np.concatenate([x[:10], x[15:]])
    np.testing.assert_allclose(night.window_std(None, excl),
                               good.transpose(1, 0, 2).reshape(2, -1).std(axis=1))
    window = slice(5, 30)
    part = np.concatenate([x[5:10], x[15:30]])
    np.testing.assert_allclose(night.window_std(window, excl),
                               part.transpose(1, 0, 2).reshape(2, -1).std(axis=1))
    # features of the good epochs do not depend on the bad ones at all
    y = x.copy()
    y[10:15] *= 1000.0
    other = BandPowerNight(np.ones((n_ep, 2, 5)), y.sum(-1), (y ** 2).sum(-1),
                           np.ptp(y, -1), n_t, np.arange(n_ep) * 30.0, ["a", "b"],
                           ["eeg", "eog"])
    np.testing.assert_allclose(other.features(None, excl), night.features(None, excl))
    # every epoch of the window excluded: the whole window is used
    all_out = np.ones(n_ep, bool)
    np.testing.assert_allclose(night.window_std(window, all_out), night.window_std(window))
    with pytest.raises(ValueError, match="exclude must have shape"):
        night.window_std(None, np.zeros(3, bool))


class _SignalStub:
    """A signal model that records the night it is given (stands in for a model from
    ``hypnoscope train --data``)."""

    name = "signal-stub"
    n_classes = 5
    input_kind_ = "signals"
    metadata = {"training_data": {"sfreq": FS, "preprocessing": "default",
                                  "roles": ["eeg", "eog"]}}

    def __init__(self) -> None:
        self.nights = []

    def predict_proba(self, night):
        self.nights.append(night)
        p = np.full((night.n_epochs, 5), 0.1)
        p[:, 2] = 0.6
        return p


def test_signal_models_get_only_good_epochs_normalised_without_the_bad(day):
    _, data, start = _cut(day, slice(40, 160))
    rng = np.random.default_rng(2)
    data[:3, 40 * SPE: 60 * SPE] += rng.normal(0, 800.0, (3, 20 * SPE)).astype(np.float32)
    stub = _SignalStub()
    res = stage_recording(_raw(data, start), model=stub)
    assert res.info["input"] == "signals"
    assert list(res.info["channels"]) == ["EEG Fpz-Cz", "EOG horizontal"]
    got = stub.nights[-1]
    assert got.n_epochs == int((res.hypnogram.codes >= 0).sum()) <= 100
    assert (res.hypnogram.codes[40:60] == UNSCORED).all()
    # z-scored over the good epochs: unit variance there (the noise, had it counted,
    # would have shrunk the clean signal ~10-fold)
    np.testing.assert_allclose(got.X.std(axis=(0, 2)), 1.0, atol=0.05)


# ------------------------------------------------------------- night boundaries
def test_resolve_time_forms_and_midnight():
    start = dt.datetime(2020, 1, 1, 22, 30)
    assert resolve_time(None, start) is None
    assert resolve_time(600, start) == 600.0 and resolve_time("600", start) == 600.0
    assert resolve_time("23:00", start) == 1800.0
    assert resolve_time("22:00", start) == -1800.0  # just before the start
    assert resolve_time("06:30", start, after=1800.0) == 8 * 3600.0  # after midnight
    assert resolve_time(dt.time(1, 0, 30), start) == 2.5 * 3600 + 30
    assert resolve_time(dt.datetime(2020, 1, 2, 7, 0), start) == 8.5 * 3600
    assert resolve_time(dt.timedelta(minutes=5), start) == 300.0
    with pytest.raises(ValueError, match="lights_off '25:00' is not a valid clock time"):
        resolve_time("25:00", start, "lights_off")
    with pytest.raises(ValueError, match="lights_on 'soon': expected seconds"):
        resolve_time("soon", start, "lights_on")
    with pytest.raises(ValueError, match="needs the recording start time"):
        resolve_time("23:00", None, "lights_off")
    with pytest.raises(ValueError, match="finite"):
        resolve_time(float("nan"), start, "lights_off")


def test_lights_off_on_bound_staging_and_statistics(day):
    _, data, _ = _cut(day, slice(0, 240))
    start = dt.datetime(1989, 4, 24, 23, 43)  # 23:43 to 01:43, across midnight
    res = stage_recording(_raw(data, start), lights_off="23:50", lights_on=dt.time(1, 30))
    hyp = res.hypnogram
    span = res.info["span"]
    assert span["source"] == "lights"
    assert (span["lights_off_sec"], span["lights_on_sec"]) == (420.0, 6420.0)
    assert (span["start_epoch"], span["stop_epoch"]) == (14, 214)
    outside = np.r_[0:14, 214:240]
    assert (hyp.codes[outside] == UNSCORED).all()
    assert all(hyp.quality[i] == OUTSIDE_SPAN for i in outside)
    assert (hyp.codes[14:214] >= 0).mean() > 0.95
    stats = res.sleep_statistics()
    assert stats["time_in_bed_min"] == pytest.approx(100.0)
    lights = [n for n in res.notices if n.code == "lights"]
    assert len(lights) == 1 and lights[0].severity == "info"
    assert "from lights-off 23:50:00 (420 s) to lights-on 01:30:00 (6420 s)" in \
        lights[0].message
    assert not [n for n in res.notices if n.code == "auto-crop"]
    # the same span in seconds gives the same hypnogram
    again = stage_recording(_raw(data, start), lights_off=420, lights_on=6420.0)
    np.testing.assert_array_equal(again.hypnogram.codes, hyp.codes)
    with pytest.raises(ValueError, match="lights_on .* must be after lights_off"):
        stage_recording(_raw(data, start), lights_off=3000, lights_on=600)
    with pytest.raises(ValueError, match="contains no epoch of the recording"):
        stage_recording(_raw(data, start), lights_off=10 * 3600.0)
    with pytest.raises(ValueError, match="crop must be"):
        stage_recording(_raw(data, start), crop="sometimes")


def test_lights_on_before_lights_off_on_the_clock():
    """Across midnight is normal; a lights-on that only fits as the next day far beyond the
    recording (06:00 to 01:00) is refused, naming both times, the recording and the swap."""
    from hypnoscope.staging.pipeline import _lights_span

    start, n = dt.datetime(2020, 1, 1, 22, 0), 1108  # 22:00 to 07:14 (30-s epochs)

    def span(off, on):
        notices = Notices()
        return _lights_span(off, on, start, n, 30.0, "night.edf", notices), notices

    (sl, off, on), notes = span("23:00", "07:00")
    assert (sl, off, on) == (slice(120, 1080), 3600.0, 32400.0) and not list(notes)
    # a recording stopped shortly before lights-on: clipped with a notice, as before
    (sl, off, on), notes = span("23:00", dt.time(7, 30))
    assert (sl, on) == (slice(120, n), n * 30.0)
    assert [x.code for x in notes] == ["lights-outside"]
    with pytest.raises(ValueError) as exc:
        span("06:00", "01:00")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(
        "night.edf: lights-on 01:00:00 is before lights-off 06:00:00 on the clock")
    assert "beyond the recording's end and makes a span of 19.0 h" in msg
    assert "(recording 2020-01-01 22:00:00 to 2020-01-02 07:14:00, 9.2 h)" in msg
    assert msg.endswith("probably meant lights-off 01:00:00 and lights-on 06:00:00 "
                        "(the two swapped)")
    with pytest.raises(ValueError, match=r"probably meant a lights-on within the recording "
                                         r"\(by 07:14:00\)"):
        span("23:00", "20:00")
    # the same mistake in seconds stays the error it was
    with pytest.raises(ValueError, match="lights_on .* must be after lights_off"):
        span(8 * 3600.0, 3 * 3600.0)


def test_main_sleep_period_ignores_naps_and_scattered_sleep():
    codes = np.zeros(2880, dtype=int)  # 24 h of wake
    codes[::80] = 1  # a misclassified sleep epoch every 40 min all day
    codes[600:720] = 2  # a 1-h afternoon nap
    codes[1000:1700] = 2  # the night ...
    codes[1300:1390] = 0  # ... with a 45-min awakening
    codes[1100:1110] = UNSCORED
    assert main_sleep_period(codes) == slice(1000, 1700)
    assert main_sleep_period(np.zeros(100, int)) is None


@pytest.mark.slow
def test_24h_recording_is_cropped_to_the_night():
    """The whole 24-h cassette recording (~12 s): before the crop, WASO came out 818 min
    (truth 34) and sleep-onset latency 0 (truth 510.5 from the recording start); with
    the automatic crop sleep statistics match the truth over the same span within a
    few minutes."""
    truth, data, start = _simulate(read_hypnogram(demo_hypnogram_path()))
    assert truth.n_epochs == 2880
    res = stage_recording(_raw(data, start))
    hyp = res.hypnogram
    span = res.info["span"]
    assert span["source"] == "auto-crop"
    # the span is the sleep period plus ~30 min of wake each side: the main sleep period
    # of the truth by the same rule (it leaves out the truth's last 2.5 min of N1, an
    # isolated bout 25 min after the night's sleep ends; a perfect stager's crop would too)
    ref = main_sleep_period(truth.codes)
    first, last = ref.start, ref.stop - 1
    assert first - 90 <= span["start_epoch"] <= first - 55
    assert last + 55 <= span["stop_epoch"] <= last + 90
    assert (hyp.codes[: span["start_epoch"]] == UNSCORED).all()
    assert (hyp.codes[span["stop_epoch"]:] == UNSCORED).all()
    crop = [n for n in res.notices if n.code == "auto-crop"]
    assert len(crop) == 1 and crop[0].severity == "info"
    assert "the 24.0-h recording was cropped" in crop[0].message
    cmp = res.compare(truth)
    st = cmp["sleep_statistics"]
    assert (cmp["lights_off"], cmp["lights_on"]) == (span["lights_off_sec"],
                                                    span["lights_on_sec"])
    assert st["sleep_onset_latency_min"]["diff"] == pytest.approx(0.0, abs=5.0)
    assert st["total_sleep_min"]["diff"] == pytest.approx(0.0, abs=15.0)
    # the sleep period (and so WASO) ends at the last sleep epoch: here brief N1 bouts
    # in the last 50 min of mostly wake (1.5, 0.5 and 2.5 min; a stager may miss them, this
    # one does since the simulated N1 of issue 16) decide it; without the crop both were
    # hundreds of minutes off
    assert st["sleep_period_min"]["diff"] == pytest.approx(0.0, abs=30.0)
    assert st["waso_min"]["diff"] == pytest.approx(0.0, abs=30.0)
    assert st["time_in_bed_min"]["diff"] == 0.0
    assert cmp["epochs"]["accuracy"] > 0.8
    # the hypnogram's own statistics (first to last scored epoch) use the same span
    own = sleep_statistics(hyp)
    assert own["waso_min"] == pytest.approx(st["waso_min"]["pred"])


# ------------------------------------------------------------- report, TSV, plot
@pytest.fixture(scope="module")
def noisy_snippet(day):
    """2 h with 10 min of 800-µV noise, staged; plus a reader notice on units."""
    _, data, start = _cut(day, slice(40, 280))
    rng = np.random.default_rng(3)
    data[:3, 60 * SPE: 80 * SPE] += rng.normal(0, 800.0, (3, 20 * SPE)).astype(np.float32)
    notices = Notices()
    notices.add("units-rescaled", "x.edf: channel 'EEG Pz-Oz' values look 1e+06 times too "
                "small for their unit 'uV'; rescaled by 1e+06", channel="EEG Pz-Oz")
    rec = PSGRecording(data[:3], CHANNELS[:3], TYPES[:3], FS, start, "x.edf",
                       {"notices": notices})
    return stage_recording(rec)


def test_report_json_and_banner_carry_notices_and_quality(noisy_snippet, tmp_path):
    res = noisy_snippet
    info = {**res.info, "recording": "x.edf"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # notices, never Python warnings
        html_path, json_path = write_report(tmp_path / "r", res.hypnogram, info)
    data = json.loads(json_path.read_text())
    codes = [n["code"] for n in data["notices"]]
    assert codes[0] == "units-rescaled" and "bad-epochs" in codes  # the reader's reaches it
    assert set(data["notices"][0]) == {"code", "message", "severity", "channel"}
    assert data["warnings"] == [n["message"] for n in data["notices"]
                                if n["severity"] == "warning"]
    assert any("rescaled by 1e+06" in w for w in data["warnings"])
    k = data["quality"]["unscored_epochs"]
    assert k in (20, 21)  # the noisy 10 min, and one wake epoch of large amplitude
    assert data["quality"]["channels"]["EOG horizontal"]["flags"]["noise"] == 20
    assert data["quality"]["channels_used"] == CHANNELS[:3]
    assert data["span"]["source"] == "recording"
    assert data["hypnogram"]["n_unscored"] == k
    assert data["hypnogram"]["quality"][60].startswith("amplitude:")
    scored = res.hypnogram.scored
    assert data["hypnogram"]["mean_confidence"] == pytest.approx(
        res.hypnogram.confidence[scored].mean())
    assert "notices" not in data["recording"] and "quality" not in data["recording"]
    html = html_path.read_text()
    top = html.split("<h1>")[0]
    assert "class='banner warn'" in top and "rescaled by 1e+06" in top
    assert f"{k} of 240 epochs ({100 * k / 240:.0f} %) have unusable signal" in top
    assert "<h2>Signal quality</h2>" in html and f"{k} of 240 epochs unscored" in html


def test_tsv_has_quality_column_and_unscored_rows(noisy_snippet, tmp_path):
    hyp = noisy_snippet.hypnogram
    path = hyp.to_tsv(tmp_path / "h.tsv")
    df = pd.read_csv(path, sep="\t", keep_default_na=False)
    assert list(df.columns)[-1] == "quality"
    bad = df.iloc[60:80]
    assert (bad["stage"] == "?").all() and (bad["confidence"] == 0).all()
    assert (bad[["p_W", "p_N1", "p_N2", "p_N3", "p_R"]].to_numpy() == 0).all()
    assert bad["quality"].str.startswith("amplitude:EEG Fpz-Cz").all()
    assert (df["quality"].iloc[:60] == "ok").mean() > 0.95
    back = read_hypnogram(path)
    np.testing.assert_array_equal(back.codes, hyp.codes)
    # slicing keeps the labels with their epochs
    assert hyp[60:62].quality == hyp.quality[60:62]


def test_hypnogram_plot_marks_flagged_epochs(noisy_snippet):
    import matplotlib.pyplot as plt

    from hypnoscope.viz.plots import plot_hypnogram

    ax = plot_hypnogram(noisy_snippet.hypnogram)
    _, labels = ax.get_legend_handles_labels()
    assert labels.count("signal-quality flag") == 1
    assert ax.get_ylim()[0] == pytest.approx(-1.0)
    plt.close(ax.figure)
    plain = Hypnogram(noisy_snippet.hypnogram.codes)
    ax = plot_hypnogram(plain)
    assert "signal-quality flag" not in ax.get_legend_handles_labels()[1]
    plt.close(ax.figure)


def test_quality_labels_must_match_epochs():
    with pytest.raises(ValueError, match="one label per epoch"):
        Hypnogram([0, 1, 2], quality=["ok"])
    hyp = Hypnogram([0, 1, 2], quality=["ok", "ok", "flat:EEG"])
    assert hyp.copy(stages=[0, 1]).quality is None  # other epochs: labels not carried
    assert hyp.as_3class().quality == hyp.quality
    assert sleep_statistics(hyp)["total_sleep_min"] == 1.0
