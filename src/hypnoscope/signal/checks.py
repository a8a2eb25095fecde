"""Checks of a recording's channels that need their spectra, run while it is read.

An EOG channel whose spectrum looks like EMG -- at least ``EMG_HF_SHARE_MIN`` (50 %) of
its 0.3-45 Hz power above 20 Hz and at most ``EMG_LF_SHARE_MAX`` (10 %) below 2 Hz,
where an EOG has most of its power (:func:`emg_spectrum_shares`) -- gets an
``emg-as-eog`` warning (:func:`check_emg_as_eog`; a spectral guess is not proof, so it
does not refuse by itself; ``strict=True`` does). The check needs the channel stored at
``EMG_CHECK_MIN_SFREQ`` (80 Hz) or more and looks at its stored samples, before
resampling.

:func:`read_psg_checked` is :func:`hypnoscope.io.psg.read_psg` with these checks
(:data:`CHANNEL_CHECKS`): the reader of every staging and training path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.io.psg import PSGRecording, read_psg
from hypnoscope.notices import add_notice
from hypnoscope.signal.spectral import welch
from hypnoscope.utils.arrays import epoch_view

if TYPE_CHECKING:  # pragma: no cover
    import mne

#: EMG-like EOG: share of 0.3-45 Hz power above 20 Hz at least this ...
EMG_HF_SHARE_MIN = 0.5
#: ... and share below 2 Hz at most this.
EMG_LF_SHARE_MAX = 0.1
#: Lowest stored rate (Hz) at which the EOG spectrum is checked for EMG.
EMG_CHECK_MIN_SFREQ = 80.0
#: Welch segment of the EMG-as-EOG check (seconds; Hann window, mean).
EMG_CHECK_NPERSEG_SEC = 4


def emg_spectrum_shares(x: np.ndarray, fs: float, max_epochs: int = 240,
                        ) -> tuple[float, float] | None:
    """``(share above 20 Hz, share below 2 Hz)`` of a signal's 0.3-45 Hz power: the
    median over at most ``max_epochs`` evenly spaced 30-s epochs of each epoch's shares
    (Welch, 4-s segments); None when the rate is below ``EMG_CHECK_MIN_SFREQ`` or the
    signal is flat."""
    if fs < EMG_CHECK_MIN_SFREQ:
        return None
    n = int(round(30.0 * fs))
    k = x.size // n
    if k == 0:
        return None
    pick = np.unique(np.linspace(0, k - 1, min(k, max_epochs)).round().astype(int))
    ep = epoch_view(x, n)[pick]
    f, p = welch(ep, fs, nperseg=int(round(EMG_CHECK_NPERSEG_SEC * fs)))
    band = (f >= 0.3) & (f <= 45.0)
    total = p[:, band].sum(axis=1)
    ok = np.isfinite(total) & (total > 0)
    if not ok.any():
        return None
    # median over epochs of the per-epoch shares: an artefact hour cannot make a whole
    # EOG look like EMG
    hf = p[ok][:, (f >= 20.0) & (f <= 45.0)].sum(axis=1) / total[ok]
    lf = p[ok][:, (f >= 0.3) & (f < 2.0)].sum(axis=1) / total[ok]
    return float(np.median(hf)), float(np.median(lf))



def check_emg_as_eog(x: np.ndarray, fs: float, channel: str, role: str, source: str,
                     meta: dict[str, Any]) -> None:
    """The ``emg-as-eog`` warning (into ``meta``) for an EOG channel whose stored samples
    ``x`` (at ``fs``) have the spectrum of EMG (see the module docstring)."""
    if role != "eog":
        return
    shares = emg_spectrum_shares(x, fs)
    if shares is not None and (shares[0] >= EMG_HF_SHARE_MIN
                               and shares[1] <= EMG_LF_SHARE_MAX):
        add_notice(meta, "emg-as-eog", (
            f"{source}: channel {channel!r} is used as EOG but its spectrum looks like EMG: "
            f"{100 * shares[0]:.0f}% of its 0.3-45 Hz power is above 20 Hz and "
            f"{100 * shares[1]:.0f}% below 2 Hz (an EOG has most of its power below "
            "2 Hz) - check the EOG channel (--eog)"), channel=channel)


#: The checks :func:`read_psg_checked` runs on every channel's stored samples.
CHANNEL_CHECKS = (check_emg_as_eog,)


def read_psg_checked(source: str | os.PathLike | mne.io.BaseRaw, *args: Any,
                     **kwargs: Any) -> PSGRecording:
    """:func:`hypnoscope.io.psg.read_psg` (same arguments) with the channel checks of
    :data:`CHANNEL_CHECKS` (their notices in ``meta["notices"]``; ``strict=True``
    raises for them too)."""
    return read_psg(source, *args, channel_checks=CHANNEL_CHECKS, **kwargs)
