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
