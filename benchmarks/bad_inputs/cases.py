"""The cases of the bad-inputs benchmark, in one table (:data:`CASES`).

Each :class:`Case` says what it feeds (``build`` writes the inputs, see :mod:`corpus`),
the command a user would type (``argv``, after ``python -m hypnoscope``; ``in/`` is a
fresh copy of the case's inputs, ``out`` the output folder), and what the target
behaviour is (``expect`` plus the regexes the message must match). The runner
(``run.py``) applies the target of issue 11 to every row -- *no traceback, no silent
wrong answer, no partial output set, clean-hour accuracy within 2 points of the clean
night* -- and the case-specific parts below.

``expect``:

- ``"ok"``: exit 0 and complete outputs (a clean recording, or an input that is fine);
- ``"warn"``: exit 0, complete outputs, and a warning (stderr or the report's notices)
  matching ``match``;
- ``"refuse"``: exit != 0 with a one-line ``hypnoscope <cmd>: ...`` message matching
  every regex of ``match`` (naming the file, channel or value), no traceback, and none of
  the refused recording's outputs left behind;
- ``"warn_or_refuse"``: either of the two (e.g. a channel that is flat all night: stage
  without it and say so, or refuse);
- ``"ok_or_refuse"``: either succeed (the ``check`` says what success must look like,
  e.g. three distinct output sets) or refuse before doing anything;
- ``"refuse_or_same"``: refuse, or succeed with exactly the output of ``same_as`` (a
  label such as ``N 2`` may be read as N2, but never silently as unscored);
- ``"interrupt"`` (``mode="sigint"``/``"sigint_write"``): Ctrl-C stops the run without
  a traceback, every output set is complete or absent, no temporary file is left, and
  running the same command again completes the batch without redoing the complete sets.

Accuracy rows: with ``baseline`` (a clean-night case, run first), the epochs outside the
defect (``bad``, from the builder's facts) must be staged within 2 points of the clean
night's accuracy on the same epochs; the defective epochs must be flagged (unscored or a
bad quality flag in the TSV), not given a confident stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.bad_inputs import checks
from benchmarks.bad_inputs.corpus import (
    EEG2,
    EEG_EOG,
    EMG,
    EOG,
    FPZ,
    PZ,
    Builder,
    cassette,
    central_eeg,
    combine,
    damaged_copy,
    fif,
    flat,
    folder_,
    nan,
    noise,
    psg,
    raw_file,
    reference,
    resp,
    saturate,
    temp,
    tsv,
)

#: The middle hour of the 7-h night (epochs 360-480: 3 h to 4 h after lights off).
MIDDLE_HOUR = (360, 480)

QUALITY = r"(?i)noise|artefact|artifact|amplitude|quality|bad epoch|flat|clip|saturat|unscor"
UNITS = r"(?i)volt|\bunits?\b|rescal|µV|\buV\b|scal"
NIGHT_SPAN = r"(?i)crop|sleep period|lights|span|time in bed"
#: A defect of one hour is not a wrong channel: a role complaint about it is a false alarm.
ROLE_FALSE_ALARM = r"(?i)looks like EMG|given as EOG|swapped"


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    feeds: str
    build: Builder
    argv: tuple[str, ...]
    expect: str
    match: tuple[str, ...] = ()      # regexes the warning (warn) or message (refuse) must match
    must_not: str | None = None      # regex no message or warning may match (misleading)
    issue: str = ""                  # what issue 11 measured before the fixes
    baseline: str | None = None      # clean-night case for the accuracy comparison
    bad: tuple[int, int] | None = None  # the defective epochs [first, stop)
    quiet: bool = False              # a clean input: no warning expected either
    complete_sets: tuple[str, ...] = ()  # stems whose output set must be complete anyway
    same_as: tuple[str, ...] = ()    # refuse_or_same: the command whose output must match
    check: Callable | None = None    # extra checks: check(run) -> (metrics, failures)
    mode: str = "cli"                # "cli", "api" (python -c, Python API), "sigint" or
    #                                  "sigint_write" (Ctrl-C at the first visible output /
    #                                  at the first file of any kind in out/)
    repeat: int = 1                  # sigint modes: attempts (a race fails any of them)
    timeout: float = 90.0


STAGE7 = ("stage", "in/night7-PSG.edf", "--out", "out")
STAGE2 = ("stage", "in/night2-PSG.edf", "--out", "out")
API_NAN = ('import mne, hypnoscope; '
           'raw = mne.io.read_raw_fif("in/night2-raw.fif", preload=True, verbose="error"); '
           'hypnoscope.stage(raw).to_tsv("out/night2.hypnogram.tsv")')

CASES: list[Case] = [
    # ------------------------------------------------------------ controls
    Case("clean_night_7h", "control", "the clean 7-h night (the demo night)",
         psg("night7"), STAGE7, "ok", quiet=True,
         issue="accuracy 0.83 (the reference for the accuracy rows)"),
    Case("clean_night_2h", "control", "the first 2 h of that night",
         psg("night2"), STAGE2, "ok", quiet=True),

    # ------------------------------------------------------------ signal quality
    Case("flat_eeg_all_night", "signal quality", "7-h night, EEG Fpz-Cz flat (0 µV) all night",
         psg("night7", defects=[flat([FPZ])]), STAGE7, "warn_or_refuse",
         match=(r"(?i)flat|constant|disconnect|no signal",),
         issue="status ok, exit 0, accuracy 0.52, 0 min N3 and REM at confidence 0.79"),
    Case("noisy_hour", "signal quality",
         "7-h night, 800 µV RMS white noise on both EEG and the EOG in hour 4 (epochs 360-480)",
         psg("night7", defects=[noise(800, EEG_EOG, MIDDLE_HOUR)]), STAGE7, "warn",
         match=(QUALITY,), must_not=ROLE_FALSE_ALARM, baseline="clean_night_7h",
         bad=MIDDLE_HOUR,
         issue="no warning; the hour staged W at confidence 1.00; other hours 0.83 -> 0.56"),
    Case("flat_hour", "signal quality", "7-h night, EEG and EOG flat (0 µV) in hour 4",
         psg("night7", defects=[flat(EEG_EOG, MIDDLE_HOUR)]), STAGE7, "warn",
         match=(QUALITY,), must_not=ROLE_FALSE_ALARM, baseline="clean_night_7h",
         bad=MIDDLE_HOUR,
         issue="115 of 120 flat epochs staged N1 at confidence 0.69, none unscored"),
    Case("clipped_hour", "signal quality",
         "7-h night, both EEG driven into saturation (on the rails of the clean file's "
         "physical range a quarter of the time, 2-3 s plateaus) in hour 4",
         psg("night7", defects=[saturate(EEG2, MIDDLE_HOUR)], keep_rails=True), STAGE7,
         "warn", match=(QUALITY,), must_not=ROLE_FALSE_ALARM, baseline="clean_night_7h",
         bad=MIDDLE_HOUR),
    Case("nan_segment_api", "signal quality",
         "2-h night as an mne Raw (.fif) with EEG Fpz-Cz NaN for epochs 100-120, staged "
         "with hypnoscope.stage() (EDF cannot hold NaN, so this row uses the Python API)",
         fif("night2", "night2-raw.fif", defects=[nan([FPZ], (100, 120))]),
         ("-c", API_NAN), "warn_or_refuse", match=(r"(?i)\bnan\b|not a number|missing",),
         bad=(100, 120), mode="api"),
    Case("edf_undefined_scaling", "signal quality",
         "2-h night, EEG Fpz-Cz header digital max = digital min (scaling undefined: MNE "
         "reads raw digital counts)",
         combine(psg("night2"), damaged_copy("night2-PSG.edf", zero_digital_range=FPZ)),
         STAGE2, "warn_or_refuse", match=(r"Fpz-Cz",)),

    # ------------------------------------------------------------ units
    Case("volts_under_uv", "units", "7-h night stored in volts under a µV header",
         psg("night7", scale=1e-6), STAGE7, "warn", match=(UNITS,),
         baseline="clean_night_7h",
         issue="three raw Python UserWarnings, then ok, accuracy 0.60"),
    Case("volts_under_uv_strict", "units", "2-h night in volts under a µV header, --strict",
         psg("night2", scale=1e-6), STAGE2 + ("--strict",), "refuse", match=(UNITS,)),
    Case("millivolts_under_uv", "units", "7-h night stored in mV under a µV header",
         psg("night7", scale=1e-3), STAGE7, "warn_or_refuse", match=(UNITS,),
         baseline="clean_night_7h"),

    # ------------------------------------------------------------ night boundaries
    Case("cassette_24h", "night boundaries",
         "24-h Sleep-EDF cassette recording (the shipped SC4001EC hypnogram whole: a day of "
         "wake around the night), no options",
         cassette("day24", "SC4001E0"), ("stage", "in/SC4001E0-PSG.edf", "--out", "out"),
         "warn", match=(NIGHT_SPAN,), check=checks.night_statistics(tol_min=30),
         issue="WASO 802.5 min (truth 21), SOL 34 (321.5), sleep period 1331.5 (533)",
         timeout=240),
    Case("cassette_24h_lights", "night boundaries",
         "the same with --lights-off/--lights-on at the night's crop (00:13:30-07:14:00)",
         cassette("day24", "SC4001E0"),
         ("stage", "in/SC4001E0-PSG.edf", "--out", "out", "--lights-off", "00:13:30",
          "--lights-on", "07:14:00"),
         "ok", check=checks.night_statistics(tol_min=30, lights=True),
         issue="no lights-off/lights-on option", timeout=240),

    # ------------------------------------------------------------ pairing
    Case("reference_other_night", "pairing",
         "2-h night with --reference from another night of the same length (start 00:13:30 "
         "vs 22:00:00, 46 h apart)",
         combine(psg("night2"), reference("night2", from_night="other2")),
         STAGE2 + ("--reference", "in/reference-Hypnogram.edf"), "refuse",
         match=(r"00:13:30", r"22:00:00"),
         issue="accepted: accuracy 0.22, kappa -0.02, exit 0"),
    Case("reference_shifted_1h", "pairing",
         "2-h night with its own truth as --reference, header start moved 1 h later",
         combine(psg("night2"), reference("night2", shift_h=1)),
         STAGE2 + ("--reference", "in/reference-Hypnogram.edf"), "refuse",
         match=(r"00:13:30", r"01:13:30"), issue="the 1-h shift is ignored"),
    Case("reference_longer_night", "pairing",
         "2-h night with the whole 7-h truth as --reference (same start)",
         combine(psg("night2"), reference("night2", from_night="night7")),
         STAGE2 + ("--reference", "in/reference-Hypnogram.edf"), "refuse",
         match=(r"night2-PSG\.edf|reference-Hypnogram", r"(?i)outside|not the same|longer"),
         issue="night FAILED, but its TSV and EDF are left behind"),
    Case("train_pair_start_mismatch", "pairing",
         "train --data with 3 Sleep-EDF pairs, one hypnogram's start 1 h after its PSG's",
         combine(psg("nap1", "SC4001E0"), psg("nap2", "SC4011E0"),
                 psg("nap3", "SC4021E0", truth=False),
                 reference("nap3", "SC4021E0-Hypnogram.edf", shift_h=1)),
         ("train", "--model", "lightgbm-context", "--data", "in", "--out", "out/m.joblib"),
         "warn_or_refuse", match=(r"SC4021E0", r"(?i)start")),

    # ------------------------------------------------------------ batches
    Case("batch_stem_collision", "batches",
         "a/S-PSG.edf, b/S-PSG.edf and a/S.edf (three nights, one output stem)",
         combine(("a", psg("nap1", "S", truth=False)), ("b", psg("nap2", "S", truth=False)),
                 ("a", psg("nap3", "S", truth=False, filename="S.edf"))),
         ("stage", "in/a/S-PSG.edf", "in/b/S-PSG.edf", "in/a/S.edf", "--out", "out"),
         "ok_or_refuse", match=(r"(?i)S-PSG\.edf|S\.edf|collid|same (output )?name|clash",),
         check=checks.distinct_outputs(epochs=(120, 180, 240)),
         issue="all three write S.*, only the last survives, '3 of 3 staged', exit 0"),
    Case("batch_one_bad_file", "batches",
         "two good nights and a text file named -PSG.edf in one batch",
         combine(psg("nap1", "good1"), psg("nap2", "good2"),
                 raw_file("bad-PSG.edf", "not an EDF file\n")),
         ("stage", "in/good1-PSG.edf", "in/bad-PSG.edf", "in/good2-PSG.edf", "--out", "out"),
         "refuse", match=(r"bad-PSG\.edf",), complete_sets=("good1", "good2")),
    Case("sigint_batch", "batches",
         "Ctrl-C (SIGINT to the process group) when the first output file of a 4-night "
         "batch appears; then the same command again",
         combine(psg("nap1", "n1"), psg("nap2", "n2"), psg("nap3", "n3"), psg("nap4", "n4")),
         ("stage", "in", "--out", "out"), "interrupt", mode="sigint", timeout=180,
         issue="no .part files, but incomplete sets (TSV + EDF without PNG and report)"),
    Case("sigint_batch_jobs2", "batches", "the same with --jobs 2 (3 attempts: it is a race)",
         combine(psg("nap1", "n1"), psg("nap2", "n2"), psg("nap3", "n3"), psg("nap4", "n4")),
         ("stage", "in", "--out", "out", "--jobs", "2"), "interrupt", mode="sigint",
         repeat=3, timeout=180),
    Case("sigint_batch_mid_write", "batches",
         "Ctrl-C as soon as anything (a temporary file too) appears in out/: during the "
         "writing of the first output set; then the same command again",
         combine(psg("nap1", "n1"), psg("nap2", "n2"), psg("nap3", "n3"), psg("nap4", "n4")),
         ("stage", "in", "--out", "out"), "interrupt", mode="sigint_write", timeout=180),
    Case("sigint_batch_jobs2_mid_write", "batches",
         "the same with --jobs 2 (3 attempts: it is a race)",
         combine(psg("nap1", "n1"), psg("nap2", "n2"), psg("nap3", "n3"), psg("nap4", "n4")),
         ("stage", "in", "--out", "out", "--jobs", "2"), "interrupt", mode="sigint_write",
         repeat=3, timeout=180),

    # ------------------------------------------------------------ output paths
    Case("stage_out_uncreatable", "output paths", "stage --out under a regular file",
         combine(psg("night2", truth=False), raw_file("blocker", "a file, not a folder\n")),
         ("stage", "in/night2-PSG.edf", "--out", "in/blocker/results"), "refuse",
         match=(r"blocker",), issue="Python traceback"),
    Case("stage_out_is_file", "output paths", "stage --out naming an existing file",
         combine(psg("night2", truth=False), raw_file("blocker", "a file, not a folder\n")),
         ("stage", "in/night2-PSG.edf", "--out", "in/blocker"), "refuse", match=(r"blocker",),
         issue="Python traceback"),
    Case("compare_report_uncreatable", "output paths", "compare --report under a regular file",
         combine(tsv("night2", "pred.tsv"), tsv("other2", "ref.tsv"),
                 raw_file("blocker", "a file, not a folder\n")),
         ("compare", "in/pred.tsv", "in/ref.tsv", "--report", "in/blocker/cmp"), "refuse",
         match=(r"blocker",), issue="Python traceback after the work"),
    Case("stats_output_uncreatable", "output paths", "stats -o under a regular file",
         combine(tsv("night2", "hyp.tsv"), raw_file("blocker", "a file, not a folder\n")),
         ("stats", "in/hyp.tsv", "-o", "in/blocker/stats.json"), "refuse", match=(r"blocker",),
         issue="Python traceback after the work"),
    Case("simulate_out_is_file", "output paths", "simulate --out naming an existing file",
         combine(tsv("night2", "hyp.tsv"), raw_file("blocker", "a file, not a folder\n")),
         ("simulate", "--hypnogram", "in/hyp.tsv", "--out", "in/blocker"), "refuse",
         match=(r"blocker",), issue="Python traceback"),
    Case("train_out_uncreatable", "output paths",
         "train --out under a regular file (3 Sleep-EDF pairs)",
         combine(psg("nap1", "SC4001E0"), psg("nap2", "SC4011E0"), psg("nap3", "SC4021E0"),
                 raw_file("blocker", "a file, not a folder\n")),
         ("train", "--model", "lightgbm-context", "--data", "in", "--out",
          "in/blocker/m.joblib"),
         "refuse", match=(r"blocker",), check=checks.no_data_read(),
         issue="traceback at save: the training work is lost"),

    # ------------------------------------------------------------ channels
    Case("eeg_same_channel_twice", "channels", "--eeg 'EEG Fpz-Cz' 'EEG Fpz-Cz'",
         psg("night2"), STAGE2 + ("--eeg", FPZ, FPZ), "refuse", match=(r"Fpz-Cz",),
         must_not=r"(?i)truncat|corrupt", issue="blamed on the file ('truncated or corrupt')"),
    Case("eeg_swapped_order", "channels", "--eeg 'EEG Pz-Oz' 'EEG Fpz-Cz' (posterior first)",
         psg("night7"), STAGE7 + ("--eeg", PZ, FPZ), "warn",
         match=(r"(?i)order|swap|frontal|posterior",), baseline="clean_night_7h",
         issue="silently loses 5 points"),
    Case("eeg_file_order_swapped", "channels",
         "7-h night whose file lists EEG Pz-Oz before EEG Fpz-Cz (no channel options)",
         psg("night7", order=[PZ, FPZ, EOG, EMG]), STAGE7, "ok", baseline="clean_night_7h"),
    Case("emg_given_as_eog", "channels",
         "2-h night with a 100 Hz EMG waveform, --eog 'EMG submental'",
         psg("night2", layout="telemetry"), STAGE2 + ("--eog", EMG), "warn_or_refuse",
         match=(r"EMG submental",), issue="accepted"),
    Case("emg_given_as_eog_unnamed", "channels",
         "the same EMG waveform labelled 'Aux1', --eog Aux1 (only its spectrum tells)",
         psg("night2", layout="telemetry", rename={EMG: "Aux1"}), STAGE2 + ("--eog", "Aux1"),
         "warn_or_refuse", match=(r"Aux1", r"(?i)EMG|spectrum|muscle")),
    Case("third_eeg_ignored", "channels",
         "7-h night with a third EEG (C4-M1), --eeg Fpz-Cz Pz-Oz C4-M1 (the model uses two)",
         psg("night7", extra={"EEG C4-M1": central_eeg}),
         STAGE7 + ("--eeg", FPZ, PZ, "EEG C4-M1"), "warn", match=(r"C4-M1",),
         baseline="clean_night_7h", issue="dropped without a word"),
    *[Case(f"emg_name_{label.replace(' ', '_')}", "channels",
           f"10-min recording whose chin EMG (100 Hz) is labelled '{label}'",
           psg("night2", epochs=20, truth=False, layout="telemetry", rename={EMG: label}),
           ("info", "in/night2-PSG.edf", "--json"), "ok",
           check=checks.channel_roles({label: ("emg", "emg_envelope")}),
           issue="not recognised as EMG" if label == "EMG1-EMG2" else "")
      for label in ("EMG1-EMG2", "Chin", "CHIN1", "EMG Chin")],

    # ------------------------------------------------------------ hypnogram files
    Case("tsv_label_XYZ", "hypnogram files", "TSV hypnogram, one stage 'XYZ'",
         tsv("night2", "xyz.tsv", "stage", "XYZ"), ("stats", "in/xyz.tsv"), "refuse",
         match=(r"xyz\.tsv", r"(?i)\b(row|line)\b", r"XYZ", r"N3"),
         issue="silently unscored"),
    Case("tsv_label_NREM2", "hypnogram files", "TSV hypnogram, one stage 'NREM2'",
         combine(tsv("night2", "nrem2.tsv", "stage", "NREM2"), tsv("night2", "clean.tsv")),
         ("stats", "in/nrem2.tsv", "--json"), "refuse_or_same",
         match=(r"nrem2\.tsv", r"NREM2"), same_as=("stats", "in/clean.tsv", "--json"),
         issue="silently unscored"),
    Case("tsv_label_N_2", "hypnogram files", "TSV hypnogram, one stage 'N 2'",
         combine(tsv("night2", "n_2.tsv", "stage", "N 2"), tsv("night2", "clean.tsv")),
         ("stats", "in/n_2.tsv", "--json"), "refuse_or_same",
         match=(r"n_2\.tsv", r"N 2"), same_as=("stats", "in/clean.tsv", "--json"),
         issue="silently unscored"),
    Case("tsv_duration_not_numeric", "hypnogram files", "TSV hypnogram, one duration 'thirty'",
         tsv("night2", "dur.tsv", "duration", "thirty"), ("stats", "in/dur.tsv"), "refuse",
         match=(r"dur\.tsv", r"(?i)\b(row|line)\b", r"(?i)duration", r"thirty"),
         issue="'cannot convert float NaN to integer', no file, row or column"),
    Case("tsv_onset_not_numeric", "hypnogram files", "TSV hypnogram, one onset '1h'",
         tsv("night2", "onset.tsv", "onset", "1h"), ("stats", "in/onset.tsv"), "refuse",
         match=(r"onset\.tsv", r"(?i)\b(row|line)\b", r"(?i)onset", r"1h")),

    # ------------------------------------------------------------ malformed files
    Case("edf_truncated", "malformed files", "2-h EDF cut to 60 % of its bytes",
         combine(psg("night2", truth=False), damaged_copy("night2-PSG.edf", fraction=0.6)),
         STAGE2, "warn_or_refuse",
         match=(r"night2-PSG\.edf", r"(?i)truncat|corrupt|short|incomplete|size|bytes")),
    Case("edf_no_eeg", "malformed files", "EDF with only EMG, respiration and temperature",
         psg("night2", epochs=20, truth=False, drop=[FPZ, PZ, EOG],
             extra={"Resp oro-nasal": resp, "Temp rectal": temp}),
         STAGE2, "refuse", match=(r"(?i)EEG", r"Resp oro-nasal|EMG submental")),
    Case("empty_file", "malformed files", "a 0-byte empty-PSG.edf",
         raw_file("empty-PSG.edf", b""), ("stage", "in/empty-PSG.edf", "--out", "out"),
         "refuse", match=(r"empty-PSG\.edf",)),
    Case("not_edf", "malformed files", "a text file named notes-PSG.edf",
         raw_file("notes-PSG.edf", "lights off 22:30, lights on 06:45\n"),
         ("stage", "in/notes-PSG.edf", "--out", "out"), "refuse", match=(r"notes-PSG\.edf",)),
    Case("shorter_than_one_epoch", "malformed files", "a 20-s recording",
         psg("night2", epochs=0, truth=False), STAGE2, "refuse",
         match=(r"(?i)epoch|30 ?s|too short|shorter",)),
    Case("empty_folder", "malformed files", "stage a folder with no recording",
         folder_("nights"), ("stage", "in/nights", "--out", "out"), "refuse",
         match=(r"nights",)),
]

BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "duplicate case names"
