"""YASA's sleep stager as a hypnoscope model: ``hypnoscope stage --model yasa``.

:class:`YasaStager` runs :class:`yasa.SleepStaging` (YASA, Vallat & Walker 2021, eLife
10:e70092; BSD-3-Clause; the extra ``peers``: ``pip install 'hypnoscope[peers]'``) on the
channels hypnoscope resolved: one EEG -- a central derivation (C3/C4/Cz) where there is
one, as YASA's classifiers were trained on, else the first EEG -- and the first EOG and
chin-EMG waveform when present. It is a stager (:mod:`hypnoscope.models.plugins`): the
recording reaches it after hypnoscope's unit and quality checks and crop, in µV at the
file's rate (YASA resamples to 100 Hz itself), and its probabilities come back in the
order of :mod:`hypnoscope.stages`. YASA chooses its classifier file by the channels
given (``clf_eeg+eog+emg_lgb_<version>.joblib`` ...); the report names the file, YASA's
version and licence. A recording YASA refuses (e.g. a rate of 80 Hz or less) is refused in
one line naming the file and YASA's reason.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import warnings
from typing import Any

import numpy as np

from hypnoscope.models.base import MissingExtraError
from hypnoscope.models.plugins import Stager, pick_channels
from hypnoscope.stages import label_to_code

#: How to install YASA (the extra ``peers``).
PEERS_EXTRA = "pip install 'hypnoscope[peers]'"
#: YASA's licence.
YASA_LICENSE = "BSD-3-Clause"
#: Seconds of the recording YASA's own checks are run on before staging (:meth:`check`).
CHECK_SEC = 60.0
_CENTRAL = re.compile(r"^(?:eeg\s*)?c[z\d]", re.IGNORECASE)


def import_yasa():
    """The ``yasa`` module; :class:`~hypnoscope.models.base.MissingExtraError` naming the
    extra ``peers`` when it is not installed."""
    try:
        import yasa
    except ImportError as exc:
        raise MissingExtraError(f"model 'yasa' needs YASA, which is not installed "
                                f"({exc}): {PEERS_EXTRA}") from None
    return yasa


def is_central(name: str) -> bool:
    """Whether an EEG channel is a central derivation (``C4-M1``, ``EEG C3-A2``,
    ``EEG(sec)`` of SHHS -> C3-A2)."""
    from hypnoscope.io.channels import channel_derivation

    return bool(_CENTRAL.match((channel_derivation(name) or name).strip()))


def classifier_file(types: list[str]) -> str:
    """The classifier YASA's ``predict()`` uses for channels of these types: the newest
    ``clf_eeg[+eog][+emg]_lgb_<version>.joblib`` of its ``classifiers`` folder (YASA's own
    rule, without demographics)."""
    yasa = import_yasa()
    folder = os.path.join(os.path.dirname(yasa.__file__), "classifiers")
    name = "clf_eeg" + ("+eog" if "eog" in types else "") + ("+emg" if "emg" in types else "")
    files = glob.glob(os.path.join(folder, glob.escape(name) + "_lgb_*.joblib"))
    if not files:
        raise FileNotFoundError(f"YASA {yasa.__version__} has no classifier {name}_lgb_*"
                                f".joblib in {folder}")

    def version(f: str) -> tuple[int, ...]:
        return tuple(int(v) for v in re.findall(r"_lgb_([\d.]+)\.joblib$", f)[0].split("."))

    return max(files, key=version)


@contextlib.contextmanager
def _quiet():
    """YASA's log below errors and Python warnings off (its classifiers were pickled by an
    older scikit-learn; the check's short excerpt is under YASA's recommended 5 min)."""
    log = logging.getLogger("yasa")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


class YasaStager(Stager):
    """YASA's pretrained LightGBM sleep stager on one EEG, EOG and chin EMG.

    Parameters
    ----------
    spec : str, optional
        Not used (YASA takes no options); given, it is refused.
    """

    name = "yasa"
    channels = {"eeg": (1, 1), "eog": (0, 1), "emg": (0, 1)}
    n_classes = 5

    def __init__(self, spec: str | None = None) -> None:
        if spec:
            raise ValueError(f"model 'yasa' takes no options, got 'yasa:{spec}'")
        self._yasa = import_yasa()
        self.version = str(self._yasa.__version__)
        self.card: dict[str, Any] = {
            "summary": ("YASA's pretrained sleep stager (LightGBM on per-epoch EEG, EOG and "
                        "EMG features; Vallat & Walker 2021, eLife 10:e70092), run on the "
                        "channels hypnoscope resolved and checked"),
            "trained_on": "NSRR nights (YASA's pretrained classifiers)",
            "version": f"yasa {self.version}",
            "license": f"{YASA_LICENSE} (YASA)",
            "classifier": "chosen by YASA for the channels read",
            "input": {"representation": "recording"},
        }

    def pick(self, recording) -> list[int]:
        """One EEG (a central derivation first), the first EOG and the first EMG
        waveform."""
        idx = pick_channels(recording, {"eeg": (1, 10**6)}, self.name)
        central = [i for i in idx if is_central(recording.ch_names[i])]
        rest = pick_channels(recording, {"eog": (0, 1), "emg": (0, 1)}, self.name)
        return [(central or idx)[0], *rest]

    def _sleep_staging(self, recording):
        """``yasa.SleepStaging`` of the recording (channels picked, µV) as an MNE Raw;
        YASA's refusal as a one-line ``ValueError`` naming the file."""
        import mne

        types = [r if r in ("eeg", "eog", "emg") else "misc" for r in recording.roles]
        info = mne.create_info(list(recording.ch_names), float(recording.sfreq), types)
        raw = mne.io.RawArray(recording.data.astype(np.float64) * 1e-6, info, verbose=False)
        names = {t: recording.ch_names[types.index(t)] for t in ("eeg", "eog", "emg")
                 if t in types}
        try:
            with _quiet():
                return self._yasa.SleepStaging(raw, eeg_name=names["eeg"],
                                               eog_name=names.get("eog"),
                                               emg_name=names.get("emg"))
        except (AssertionError, ValueError) as exc:
            raise ValueError(self._refusal(recording, exc)) from None

    def _refusal(self, recording, exc: BaseException) -> str:
        why = str(exc).strip() or type(exc).__name__
        return (f"{recording.source}: YASA {self.version} cannot stage it: {why} "
                f"(recording at {recording.sfreq:g} Hz, channels "
                f"{', '.join(recording.ch_names)})")

    def check(self, recording) -> None:
        """YASA's own checks (its rate and channel rules) on the first
        :data:`CHECK_SEC` seconds; its reason as a ``ValueError`` naming the file."""
        n = min(recording.n_samples, int(round(CHECK_SEC * recording.sfreq)))
        sls = self._sleep_staging(recording.copy(data=recording.data[:, :n]))
        self.card["classifier"] = os.path.basename(classifier_file(sls.ch_types))

    def predict_proba(self, recording) -> np.ndarray:
        """YASA's probabilities ``(n_epochs, 5)`` in the order W, N1, N2, N3, R for the
        30-s epochs of ``recording`` (channels picked, µV)."""
        sls = self._sleep_staging(recording)
        path = classifier_file(sls.ch_types)
        self.card["classifier"] = os.path.basename(path)
        try:
            with _quiet():
                hyp = sls.predict(path_to_model=path)
        except (AssertionError, ValueError) as exc:
            raise ValueError(self._refusal(recording, exc)) from None
        proba = hyp.proba
        out = np.zeros((len(proba), 5))
        for col in proba.columns:
            out[:, label_to_code(str(col))] = proba[col].to_numpy(dtype=np.float64)
        n = recording.n_samples // int(round(30.0 * recording.sfreq))
        if len(out) < n:  # YASA's resampling rounded the last epoch away
            out = np.vstack([out, np.repeat(out[-1:], n - len(out), axis=0)])
        return out[:n]


def make_yasa(spec: str | None = None) -> YasaStager:
    """The ``yasa`` stager (:class:`YasaStager`)."""
    return YasaStager(spec)
