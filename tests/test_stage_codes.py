"""Numeric stage codes: R&K numbering (0 W, 1-4 stages 1-4 with 4 -> N3, 5 REM) and
YASA/AASM numbering (0 W, 1 N1, 2 N2, 3 N3, 4 REM) are told apart only where certain (a
legend in the file, a 5, or ``stage_codes``); a 4 without them is refused, never guessed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hypnoscope.cli import main
from hypnoscope.evaluation.sleepstats import sleep_statistics
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.stages import (
    N1,
    N2,
    N3,
    R,
    W,
    resolve_stage_codes,
    stage_code_legend,
    stage_codes_label_map,
)

#: A night in YASA's integers (own values): 0 x4, 1 x1, 2 x5, 3 x4, 4 x5 epochs of 30 s.
VALUES = [0, 0, 0, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 2, 2, 4, 4, 0]
#: YASA: 4 is REM -> REM 5 x 0.5 = 2.5 min, N3 4 x 0.5 = 2.0 min.
YASA_CODES = [{0: W, 1: N1, 2: N2, 3: N3, 4: R}[v] for v in VALUES]
YASA_REM_MIN, YASA_N3_MIN = 2.5, 2.0
#: R&K: 4 is stage 4 -> N3 -> REM 0 min, N3 (4 + 5) x 0.5 = 4.5 min.
RK_REM_MIN, RK_N3_MIN = 0.0, 4.5
#: YASA's header layout (a comment line, then the legend).
YASA_HEADER = ("# 1 value per 30 seconds of data (1 / 30 Hz)\n"
               "# 0: Wake, 1: N1, 2: N2, 3: N3, 4: REM\n")


def _write(path, values, header: str = ""):
    path.write_text(header + "".join(f"{v}\n" for v in values), encoding="utf-8")
    return path


def _minutes(hyp) -> tuple[float, float]:
    stats = sleep_statistics(hyp)
    return stats["rem_min"], stats["n3_min"]


def test_yasa_file_with_its_legend_reads_rem(tmp_path):
    hyp = read_hypnogram(_write(tmp_path / "hypno_30s.txt", VALUES, YASA_HEADER))
    np.testing.assert_array_equal(hyp.codes, YASA_CODES)
    assert _minutes(hyp) == (YASA_REM_MIN, YASA_N3_MIN)


def test_rk_legend_reads_4_as_n3(tmp_path):
    path = _write(tmp_path / "rk.txt", VALUES, "# 0: W, 1: S1, 2: S2, 3: S3, 4: S4, 5: REM\n")
    assert _minutes(read_hypnogram(path)) == (RK_REM_MIN, RK_N3_MIN)


def test_ambiguous_file_is_refused_naming_file_values_and_option(tmp_path):
    path = _write(tmp_path / "night.txt", VALUES)
    with pytest.raises(ValueError) as exc:
        read_hypnogram(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(path) in msg and "[0, 1, 2, 3, 4]" in msg
    assert "--stage-codes yasa" in msg and "--stage-codes rk" in msg and "--label-map" in msg


@pytest.mark.parametrize(("codes", "expected"), [
    ("yasa", (YASA_REM_MIN, YASA_N3_MIN)), ("aasm", (YASA_REM_MIN, YASA_N3_MIN)),
    ("rk", (RK_REM_MIN, RK_N3_MIN)), ("RK", (RK_REM_MIN, RK_N3_MIN))])
def test_stage_codes_reads_the_ambiguous_file_either_way(tmp_path, codes, expected):
    path = _write(tmp_path / "night.txt", VALUES)
    assert _minutes(read_hypnogram(path, stage_codes=codes)) == expected


def test_a_five_means_rk(tmp_path):
    # 4 -> N3 (2 epochs), 5 -> REM (3 epochs): REM 1.5 min, N3 (1 + 2) x 0.5 = 1.5 min
    values = [0, 1, 2, 3, 4, 4, 5, 5, 5, 2, 0]
    hyp = read_hypnogram(_write(tmp_path / "rk.txt", values))
    np.testing.assert_array_equal(hyp.codes, [W, N1, N2, N3, N3, N3, R, R, R, N2, W])
    assert _minutes(hyp) == (1.5, 1.5)


def test_zero_to_three_read_the_same_in_both_conventions(tmp_path):
    values = [0, 1, 2, 3, 3, 2, 0]
    path = _write(tmp_path / "light.txt", values)
    expected = [W, N1, N2, N3, N3, N2, W]
    for codes in (None, "rk", "yasa"):
        np.testing.assert_array_equal(read_hypnogram(path, stage_codes=codes).codes, expected)


def test_yasa_has_no_five(tmp_path):
    path = _write(tmp_path / "mixed.txt", [0, 4, 5], YASA_HEADER)
    with pytest.raises(ValueError, match=r"mixed\.txt: numeric stage\(s\) \[5\] are not stages"):
        read_hypnogram(path)
    with pytest.raises(ValueError, match=r"\[5\] are not stages"):
        read_hypnogram(_write(tmp_path / "five.txt", [0, 5]), stage_codes="yasa")


def test_conflicting_legend_and_bad_option_are_refused(tmp_path):
    path = _write(tmp_path / "both.txt", VALUES, "# 4: REM\n# 5: REM\n")
    with pytest.raises(ValueError, match="both.txt: its header declares both"):
        read_hypnogram(path)
    with pytest.raises(ValueError, match="stage_codes 'nrem' is not"):
        read_hypnogram(path, stage_codes="nrem")


def test_label_map_settles_the_ambiguity(tmp_path):
    path = _write(tmp_path / "night.txt", VALUES)
    assert _minutes(read_hypnogram(path, label_map="4=R")) == (YASA_REM_MIN, YASA_N3_MIN)
    # the folded label map that `stage`/`train` pass on reads like stage_codes
    folded = stage_codes_label_map("yasa", "9=?")
    assert folded["4"] == "R" and folded["9"] == "?"
    assert _minutes(read_hypnogram(path, label_map=folded)) == (YASA_REM_MIN, YASA_N3_MIN)
    assert _minutes(read_hypnogram(path, label_map=stage_codes_label_map("rk"))) == (
        RK_REM_MIN, RK_N3_MIN)
    assert stage_codes_label_map(None, "4=R") == "4=R"


def test_table_with_numeric_stages(tmp_path):
    rows = "".join(f"{30 * k}\t30\t{v}\n" for k, v in enumerate(VALUES))
    plain = tmp_path / "night.tsv"
    plain.write_text("onset\tduration\tstage\n" + rows, encoding="utf-8")
    with pytest.raises(ValueError, match=r"night\.tsv: numeric stages .*--stage-codes"):
        read_hypnogram(plain)
    assert _minutes(read_hypnogram(plain, stage_codes="yasa")) == (YASA_REM_MIN, YASA_N3_MIN)
    legend = tmp_path / "legend.tsv"
    legend.write_text(YASA_HEADER + "onset\tduration\tstage\n" + rows, encoding="utf-8")
    assert _minutes(read_hypnogram(legend)) == (YASA_REM_MIN, YASA_N3_MIN)


def test_text_labels_are_untouched():
    labels = ["Sleep stage 4", "S4", "REM", "N3", "-1", "?"]
    assert resolve_stage_codes(labels, "x") == labels
    assert stage_code_legend(["0: Wake, 1: N1, 2: N2, 3: N3, 4: REM"]) == {"yasa"}
    assert stage_code_legend(["4 = Stage 4", "1 value per 30 seconds"]) == {"rk"}
    assert stage_code_legend(["scored by A. Smith, 2 scorers"]) == set()


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_stats_refuses_then_reads_with_stage_codes(tmp_path, capsys):
    path = _write(tmp_path / "night.txt", VALUES)
    code, out, err = _run(capsys, "stats", path, "--strict")
    assert code == 2 and out == ""
    assert str(path) in err and "--stage-codes yasa" in err and "Traceback" not in err
    code, out, _ = _run(capsys, "stats", path, "--stage-codes", "yasa", "--json", "--strict")
    stats = json.loads(out)
    assert code == 0
    assert (stats["rem_min"], stats["n3_min"]) == (YASA_REM_MIN, YASA_N3_MIN)
    code, out, _ = _run(capsys, "stats", path, "--stage-codes", "rk", "--json")
    assert code == 0 and json.loads(out)["rem_min"] == RK_REM_MIN


def test_cli_compare_takes_stage_codes(tmp_path, capsys):
    ref = _write(tmp_path / "ref.txt", VALUES)
    code, _, err = _run(capsys, "compare", ref, ref)
    assert code == 2 and "--stage-codes" in err
    code, out, _ = _run(capsys, "compare", ref, ref, "--stage-codes", "yasa", "--json")
    assert code == 0
    epochs = json.loads(out)["epochs"]
    assert epochs["n_epochs"] == len(VALUES) and epochs["accuracy"] == 1.0
    assert epochs["per_class_f1"]["R"] == 1.0  # REM present: 4 read as REM in both files
