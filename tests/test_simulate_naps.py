"""Simulated nap days (MSLT, MWT): the truth states the nap rules of the true hypnograms,
the files carry the stated lights times, and a seed fixes everything."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pytest

from hypnoscope.cli import main
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.io.psg import read_psg
from hypnoscope.simulate.naps import (
    PROFILES,
    TRUTH_COLUMNS,
    read_nap_truth,
    sample_nap,
    simulate_nap_day,
)
from hypnoscope.stages import N1, R, W


@pytest.fixture(scope="module")
def mslt_day(tmp_path_factory):
    out = tmp_path_factory.mktemp("mslt")
    return out, simulate_nap_day(out, "mslt", "narcolepsy-like", seed=4, n_naps=3)


@pytest.fixture(scope="module")
def mwt_day(tmp_path_factory):
    out = tmp_path_factory.mktemp("mwt")
    return out, simulate_nap_day(out, "mwt", "narcolepsy-like", seed=2, n_naps=3)


def _first(codes, cond) -> int | None:
    hits = np.flatnonzero(cond(np.asarray(codes)))
    return int(hits[0]) if hits.size else None


@pytest.mark.parametrize("protocol", ["mslt", "mwt"])
def test_sampled_naps_follow_the_protocol(protocol):
    """Over many draws: lights-off after a few minutes of wake, the nap ends where the
    protocol says, and the stated latencies are those of the stages."""
    rng = np.random.default_rng(0)
    seen_soremp = seen_no_sleep = 0
    for lat in np.exp(rng.normal(np.log(8.0), 1.0, 60)):
        nap = sample_nap(protocol, float(lat), rng, soremp_prob=0.5, pre_epochs=5)
        c = nap.codes
        assert nap.lights_off_epoch == 5 and np.all(c[:5] == W) and np.all(
            c[nap.lights_on_epoch:] == W)
        inside = c[nap.lights_off_epoch:nap.lights_on_epoch]
        onset = _first(inside, lambda x: x != W)
        if onset is None:
            seen_no_sleep += 1
            limit = 20.0 if protocol == "mslt" else 40.0
            assert nap.sleep_latency_min is None and len(inside) == 2 * limit
            assert nap.latency_for_mean_min == limit
            assert not nap.slept and not nap.soremp and nap.rem_latency_min is None
            continue
        assert nap.slept and nap.sleep_latency_min == nap.latency_for_mean_min == onset / 2
        rem = _first(inside, lambda x: x == R)
        if protocol == "mslt":
            assert len(inside) == onset + 31  # 15 min from after the first sleep epoch
            assert nap.rem_latency_min == (None if rem is None else (rem - onset) / 2)
            assert nap.soremp == (rem is not None)
            seen_soremp += nap.soremp
        else:
            assert rem is None and not nap.soremp
            u = nap.mwt_unequivocal_latency_min
            if u is None:
                assert len(inside) == 80
            else:  # the trial ends with the epoch that makes the sleep unequivocal
                k = int(u * 2)
                last = inside[-1]
                assert last != W and (last != N1 or (len(inside) - k == 3
                                                     and np.all(inside[k:] == N1)))
                assert np.all(inside[:onset] == W)
    assert seen_no_sleep > 0
    if protocol == "mslt":
        assert seen_soremp > 5


def test_profiles_draw_the_stated_latencies():
    """The narcolepsy-like MSLT day is far sleepier than the healthy one (many days)."""
    from hypnoscope.simulate.naps import draw_day_latencies

    rng = np.random.default_rng(1)
    for proto, lo, hi in (("mslt", 3.0, 11.0), ("mwt", 8.0, 32.0)):
        narco, healthy = (np.concatenate([draw_day_latencies(PROFILES[p], proto, 5, rng)
                                          for _ in range(1000)])
                          for p in ("narcolepsy-like", "healthy"))
        assert np.median(narco) == pytest.approx(lo, rel=0.1)
        assert np.median(healthy) == pytest.approx(hi, rel=0.1)


def test_files_read_back_with_the_stated_lights(mslt_day):
    out, truth = mslt_day
    assert truth["simulated"] and truth["protocol"] == "mslt" and len(truth["naps"]) == 3
    starts = []
    for k, nap in enumerate(truth["naps"]):
        rec = read_psg(out / nap["psg"])
        start = dt.datetime.fromisoformat(nap["recording_start"])
        assert rec.start_time.replace(tzinfo=None) == start
        ann = dict(zip(rec.annotations.description, rec.annotations.onset, strict=True))
        assert ann == {"Lights off": nap["lights_off_sec"], "Lights on": nap["lights_on_sec"]}
        for key in ("lights_off", "lights_on"):
            clock = start + dt.timedelta(seconds=nap[f"{key}_sec"])
            assert clock.strftime("%H:%M:%S") == nap[key]
        off = dt.datetime.combine(start.date(), dt.time(9)) + dt.timedelta(hours=2 * k)
        assert dt.timedelta(0) <= start + dt.timedelta(seconds=nap["lights_off_sec"]) - off \
            <= dt.timedelta(minutes=3)
        hyp = read_hypnogram(out / nap["hypnogram"])
        assert hyp.start_time == start
        assert rec.duration_sec == pytest.approx(hyp.duration_sec)
        assert 25 <= hyp.duration_sec / 60 <= 45
        starts.append(start)
    rows = list(csv.DictReader((out / "truth.csv").open()))
    assert list(rows[0]) == list(TRUTH_COLUMNS)
    for row, nap in zip(rows, truth["naps"], strict=True):
        assert row["lights_off"] == nap["lights_off"] and row["soremp"] == str(nap["soremp"])
        assert float(row["latency_for_mean_min"]) == nap["latency_for_mean_min"]
        assert row["sleep_latency_min"] == ("" if nap["sleep_latency_min"] is None
                                            else str(nap["sleep_latency_min"]))
    assert read_nap_truth(out) == truth


def test_seeded_days_are_identical(tmp_path, mslt_day):
    out, truth = mslt_day
    again = simulate_nap_day(tmp_path / "again", "mslt", "narcolepsy-like", seed=4, n_naps=3)
    assert again == truth
    for nap in truth["naps"]:
        a = read_psg(out / nap["psg"])
        b = read_psg(tmp_path / "again" / nap["psg"])
        np.testing.assert_array_equal(a.data, b.data)
    other = simulate_nap_day(tmp_path / "other", "mslt", "narcolepsy-like", seed=5, n_naps=3)
    assert other["traits"] != truth["traits"]
    assert [n["sleep_latency_min"] for n in other["naps"]] != \
        [n["sleep_latency_min"] for n in truth["naps"]]


def test_day_summary_is_the_mean_of_the_naps(mslt_day, mwt_day):
    for _, truth in (mslt_day, mwt_day):
        lat = [n["latency_for_mean_min"] for n in truth["naps"]]
        assert truth["day"]["mean_sleep_latency_min"] == pytest.approx(np.mean(lat))
    naps = mslt_day[1]["naps"]
    assert mslt_day[1]["day"]["n_soremps"] == sum(n["soremp"] for n in naps)
    assert mwt_day[1]["day"]["mean_unequivocal_latency_min"] == pytest.approx(np.mean(
        [40.0 if n["mwt_unequivocal_latency_min"] is None
         else n["mwt_unequivocal_latency_min"] for n in mwt_day[1]["naps"]]))


def test_cli_simulate_protocol(tmp_path, capsys):
    out = tmp_path / "day"
    assert main(["simulate", "--protocol", "mwt", "--naps", "1", "--seed", "7",
                 "--out", str(out)]) == 0
    truth = read_nap_truth(out)
    assert truth["protocol"] == "mwt" and truth["profile"]["name"] == "healthy"
    assert f"mean sleep latency {truth['day']['mean_sleep_latency_min']:.1f} min" in \
        capsys.readouterr().out
    for bad in (["--protocol", "mslt", "--naps", "0"], ["--n-subjects", "1", "--naps", "2"],
                ["--n-subjects", "1", "--profile", "healthy"],
                ["--protocol", "mwt", "--hypnogram-dir", str(tmp_path)]):
        assert main(["simulate", *bad, "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def _score_fields(score) -> dict:
    return {"sleep_latency_min": score.sleep_latency_min,
            "latency_for_mean_min": score.latency_for_mean_min,
            "rem_latency_min": score.rem_latency_min, "soremp": score.soremp,
            "mwt_unequivocal_latency_min": score.mwt_unequivocal_latency_min}


@pytest.mark.parametrize("protocol", ["mslt", "mwt"])
def test_truth_is_score_nap_of_the_true_hypnograms(protocol):
    """Many sampled naps of both profiles: the stated truth is what the nap rules
    (evaluation.naps.score_nap) give on the true hypnogram with the stated lights, and
    lights on is where the protocol ends the nap."""
    from hypnoscope.evaluation.naps import score_nap
    from hypnoscope.hypnogram import Hypnogram

    rng = np.random.default_rng(3)
    kinds = set()
    for profile in PROFILES.values():
        median = profile.mslt_latency_min if protocol == "mslt" else profile.mwt_latency_min
        for lat in np.exp(rng.normal(np.log(median), 0.8, 40)):
            nap = sample_nap(protocol, float(lat), rng, soremp_prob=profile.soremp_prob
                             if protocol == "mslt" else 0.0, pre_epochs=int(rng.integers(4, 11)))
            off, on = nap.lights_off_epoch * 30.0, nap.lights_on_epoch * 30.0
            score = score_nap(Hypnogram(nap.codes), protocol, off, on)
            assert score.complete and not score.problems
            assert score.end_sec == on
            truth = {k: getattr(nap, k) for k in _score_fields(score)}
            assert _score_fields(score) == truth
            kinds.add((nap.slept, nap.soremp, nap.mwt_unequivocal_latency_min is None))
    assert len(kinds) >= 3  # with and without sleep, SOREMP / unequivocal sleep


def test_day_truth_is_score_nap_of_its_files(mslt_day, mwt_day):
    """The written true hypnograms and lights give the truth and the day summary."""
    from hypnoscope.evaluation.naps import score_nap, summarise_day

    for out, truth in (mslt_day, mwt_day):
        scores = []
        for nap in truth["naps"]:
            hyp = read_hypnogram(out / nap["hypnogram"])
            s = score_nap(hyp, truth["protocol"], nap["lights_off_sec"], nap["lights_on_sec"])
            assert _score_fields(s) == {k: nap[k] for k in _score_fields(s)}
            scores.append(s)
        day = summarise_day(scores, truth["protocol"])
        for k, v in truth["day"].items():
            assert day[k] == pytest.approx(v), k


def test_bad_segments_are_as_frequent_per_hour_as_in_nights(tmp_path, monkeypatch):
    """Each nap is simulated by the night simulator with the day's subject, whose chance
    of bad-signal segments (meant for a 9-h night) is scaled to the nap's length."""
    import hypnoscope.simulate.naps as naps_mod

    seen = []
    real = naps_mod.simulate_night

    def spy(hyp, **kw):
        seen.append((hyp.duration_sec, kw["subject"]))
        return real(hyp, **kw)

    monkeypatch.setattr(naps_mod, "simulate_night", spy)
    truth = simulate_nap_day(tmp_path, "mslt", "healthy", seed=1, n_naps=2)
    assert len(seen) == 2
    for dur, subject in seen:
        assert subject.alpha_freq == truth["traits"]["alpha_freq"]
        assert subject.bad_segment_prob == pytest.approx(
            truth["traits"]["bad_segment_prob"] * dur / (9 * 3600.0))


def test_latent_stages_are_the_scored_ones_without_disagreement(tmp_path, mslt_day):
    """At difficulty 0 the signals follow the scored stages: the nap's latent stages are
    its hypnogram from lights off to lights on; at the default difficulty they are
    stages of the same length that differ from the scored ones on some epochs."""
    clean = simulate_nap_day(tmp_path, "mslt", "narcolepsy-like", seed=4, n_naps=3,
                             difficulty=0.0)
    for nap in clean["naps"]:
        hyp = read_hypnogram(tmp_path / nap["hypnogram"])
        a, b = (int(nap[k] // 30) for k in ("lights_off_sec", "lights_on_sec"))
        assert nap["latent_stages"] == "".join(str(c) for c in hyp.codes[a:b])
    out, truth = mslt_day
    differ = 0
    for nap in truth["naps"]:
        hyp = read_hypnogram(out / nap["hypnogram"])
        a, b = (int(nap[k] // 30) for k in ("lights_off_sec", "lights_on_sec"))
        latent = np.array([int(c) for c in nap["latent_stages"]])
        assert latent.shape == (b - a,) and set(latent) <= {0, 1, 2, 3, 4}
        differ += int((latent != hyp.codes[a:b]).sum())
    assert differ > 0
