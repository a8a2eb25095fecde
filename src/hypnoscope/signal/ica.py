"""ICA eye-artefact removal of the band-power pipeline, without scikit-learn.

:func:`remove_eye_components` fits MNE's ``ICA(method="fastica")`` on the EEG channels
(:data:`ICA`: ``random_state=42``, ``max_iter=500``, as many components as EEG
channels) and removes the components whose correlation with the EOG
(:meth:`mne.preprocessing.ICA.find_bads_eog`, both band-passed to 1-10 Hz,
:data:`SCORE_FILTER`) exceeds 0.8. With ``engine="numpy"`` (default) it is MNE's ICA with
scikit-learn's FastICA computed step for step in NumPy/SciPy (the same operations in
the same order on arrays of the same layout, hence the same floating-point results)
without importing scikit-learn or MNE's ICA machinery; ``engine="mne"`` runs the
original (``tests/test_ica_engine.py`` checks that both give the same signals).

The unmixing matrix is fitted on a decimated copy of long recordings
(``ica_decim="auto"``: at most :data:`ICA_FIT_MAX_SAMPLES` samples spread evenly over
the night); the components are scored against the EOG on every
:data:`ICA_SCORE_DECIM`-th sample (the 1-10 Hz band is not aliased at 50 Hz) and
removed from every sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hypnoscope.signal.filters import design_fir, fir_filter

ICA = {"method": "fastica", "random_state": 42, "max_iter": 500, "eog_threshold": 0.8,
       "eog_measure": "correlation"}


#: Longest ICA fit with ``ica_decim="auto"`` (samples).
ICA_FIT_MAX_SAMPLES = 120_000


#: Decimation of the signals on which ICA components are scored against the EOG
#: (applied only when the decimated rate stays >= 48 Hz; see remove_eye_components).
ICA_SCORE_DECIM = 2


#: ``ICA.find_bads_eog``'s 1-10 Hz band-pass of sources and EOG (MNE's settings).
SCORE_FILTER = {"l_freq": 1.0, "h_freq": 10.0, "phase": "zero-double",
                "filter_length": "10s", "fir_window": "hann", "l_trans_bandwidth": 0.5,
                "h_trans_bandwidth": 0.5, "fir_design": "firwin2"}


def score_filter_taps(sfreq: float, shipped: bool = True) -> np.ndarray:
    """FIR taps (one pass) of the 1-10 Hz filter of :data:`SCORE_FILTER`."""
    kw = dict(SCORE_FILTER)
    return design_fir(sfreq, kw.pop("l_freq"), kw.pop("h_freq"), shipped=shipped, **kw)



def _svd(a: np.ndarray):
    """``mne.fixes._safe_svd``: SciPy's SVD, GESVD if GESDD does not converge."""
    from scipy import linalg

    try:
        return linalg.svd(a, full_matrices=False)
    except np.linalg.LinAlgError:  # pragma: no cover - MKL's GESDD bug
        return linalg.svd(a, full_matrices=False, lapack_driver="gesvd")


def _pinv(a: np.ndarray) -> np.ndarray:
    """``mne.utils.pinv``."""
    u, s, vh = _svd(a)
    rtol = max(vh.shape + u.shape) * np.finfo(u.dtype).eps
    rank = np.sum(s > np.max(s) * rtol)
    u = u[:, :rank]
    u /= s[:rank]
    return (u @ vh[:rank]).conj().T


def _sym_decorrelation(w: np.ndarray) -> np.ndarray:
    """``sklearn.decomposition._fastica._sym_decorrelation``."""
    from scipy import linalg

    s, u = linalg.eigh(np.dot(w, w.T))
    s = np.clip(s, a_min=np.finfo(w.dtype).tiny, a_max=None)
    return np.linalg.multi_dot([u * (1.0 / np.sqrt(s)), u.T, w])


def _fastica_parallel(x: np.ndarray, max_iter: int, random_state: int,
                      tol: float = 1e-4) -> tuple[np.ndarray, int]:
    """scikit-learn's ``FastICA(whiten=False, algorithm="parallel", fun="logcosh")``
    fitted on ``x`` (n_samples, n_components): its ``components_`` and ``n_iter_``."""
    xt = x.T
    n = xt.shape[0]
    rng = np.random.mtrand.RandomState(random_state)  # mne.utils.check_random_state
    w = _sym_decorrelation(np.asarray(rng.normal(size=(n, n)), dtype=xt.dtype))
    p_ = float(xt.shape[1])
    ii = 0
    for ii in range(max_iter):  # noqa: B007 - the count is returned
        gwtx = np.dot(w, xt)
        np.tanh(gwtx, gwtx)  # logcosh, alpha = 1: x *= 1 is exact
        g_wtx = np.empty(gwtx.shape[0], dtype=gwtx.dtype)
        for i, gx_i in enumerate(gwtx):
            g_wtx[i] = (1.0 * (1 - gx_i**2)).mean()
        w1 = _sym_decorrelation(np.dot(gwtx, xt.T) / p_ - g_wtx[:, np.newaxis] * w)
        lim = max(abs(abs(np.einsum("ij,ij->i", w1, w)) - 1))
        w = w1
        if lim < tol:
            break
    return w, ii + 1


@dataclass
class _EEGICA:
    """A fitted EEG ICA (the state of ``mne.preprocessing.ICA`` that is used here)."""

    pre_whitener: np.ndarray  # (n, 1)
    pca_mean: np.ndarray
    pca_components: np.ndarray
    unmixing: np.ndarray
    mixing: np.ndarray
    n_iter: int

    def sources(self, data: np.ndarray) -> np.ndarray:
        """``ICA._transform``: sources of EEG ``data`` (n, n_samples); ``data`` is
        overwritten."""
        data /= self.pre_whitener
        data -= self.pca_mean[:, None]
        return np.dot(np.dot(self.unmixing, self.pca_components[: len(self.unmixing)]), data)

    def remove(self, data: np.ndarray, exclude: list[int]) -> np.ndarray:
        """``ICA._pick_sources``: ``data`` (n, n_samples) without the components
        ``exclude``; ``data`` is overwritten."""
        k = len(self.unmixing)
        data /= self.pre_whitener
        data -= self.pca_mean[:, None]
        keep = np.setdiff1d(np.arange(k), exclude)
        n_pca = self.pca_components.shape[0]
        pca_components = self.pca_components[:n_pca]
        unmixing = np.eye(n_pca)
        unmixing[:k, :k] = self.unmixing
        unmixing = np.dot(unmixing, pca_components)
        mixing = np.eye(n_pca)
        mixing[:k, :k] = self.mixing
        mixing = pca_components.T @ mixing
        keep = np.concatenate((keep, np.arange(k, n_pca)))
        data = np.dot(np.dot(mixing[:, keep], unmixing[keep, :]), data)
        data += self.pca_mean[:, None]
        data *= self.pre_whitener
        return data


def _fit_eeg_ica(data: np.ndarray, random_state: int, max_iter: int) -> _EEGICA:
    """``ICA(n_components=n, method="fastica").fit(raw)`` on EEG ``data`` (n,
    n_samples) of one channel type (overwritten), including MNE's sort of the
    components by explained variance."""
    fit_data = data.copy()  # ICA._fit_raw's get_data copy, kept for the variance
    pre_whitener = np.empty([len(data), 1])
    pre_whitener[np.arange(len(data))] = np.std(data[np.arange(len(data))])
    data /= pre_whitener
    # mne.utils._PCA(n_components=None, whiten=True).fit_transform(data.T)
    x = data.T.copy()
    mean = np.mean(x, axis=0)
    x -= mean
    u, s, v = _svd(x)
    max_abs_cols = np.argmax(np.abs(u), axis=0)  # svd_flip, u-based
    signs = np.sign(u[max_abs_cols, np.arange(u.shape[1])])
    u *= signs
    v *= signs[:, np.newaxis]
    explained_variance = (s**2) / (x.shape[0] - 1)
    n_comp = min(x.shape)
    u = u[:, :n_comp]
    u *= math.sqrt(x.shape[0] - 1)
    k = len(data)
    w, n_iter = _fastica_parallel(u[:, slice(0, k)], max_iter, random_state)
    norms = np.sqrt(explained_variance[:k])
    norms[norms == 0] = 1.0
    w /= norms
    ica = _EEGICA(pre_whitener, mean, v, w, _pinv(w), n_iter)
    # _ica_explained_variance + _sort_components
    src = ica.sources(fit_data)
    var = (np.sum(ica.mixing**2, axis=0) * np.sum(src**2, axis=1)
           / (src.shape[0] * src.shape[1] - 1))
    order = var.argsort()[::-1]
    ica.mixing = ica.mixing[:, order]
    ica.unmixing = ica.unmixing[order, :]
    return ica


def _eog_scores(ica: _EEGICA, eeg: np.ndarray, eog: np.ndarray,
                sfreq: float) -> np.ndarray:
    """``ICA.find_bads_eog`` scores: Pearson correlation of each source with the EOG,
    both band-passed to 1-10 Hz as MNE does (``eeg`` and ``eog`` are overwritten)."""
    taps = score_filter_taps(sfreq)
    sources = ica.sources(eeg)
    fir_filter(sources, taps, phase=SCORE_FILTER["phase"], out=sources)
    target = fir_filter(eog, taps, phase=SCORE_FILTER["phase"], out=eog)

    # Pearson's r as scipy.stats.pearsonr computes it (the same steps, hence the same
    # numbers as MNE's scores) without importing scipy.stats (a slow import; docs/design.md,
    # design notes), in place (``x`` is overwritten; one temporary the size of ``x``)
    def centred_unit(x: np.ndarray) -> np.ndarray:
        x -= x.mean(axis=-1, keepdims=True)
        xmax = np.maximum(x.max(axis=-1, keepdims=True), -x.min(axis=-1, keepdims=True))
        t = x / xmax
        t *= t  # np.linalg.norm(x / xmax): the square root of the sum of the squares
        norm = xmax * np.sqrt(np.add.reduce(t, axis=-1, keepdims=True))
        return np.divide(x, norm, out=t)

    with np.errstate(invalid="ignore", divide="ignore"):  # a flat signal: NaN, as SciPy
        r = np.vecdot(centred_unit(sources), centred_unit(target))
    return np.clip(r, -1.0, 1.0)


def remove_eye_components(data: np.ndarray, sfreq: float, ch_names: list[str],
                          roles: list[str], ica_decim: int | str = "auto",
                          copy: bool = True, engine: str = "numpy",
                          ) -> tuple[np.ndarray, dict[str, Any]]:
    """ICA on the EEG channels; remove components correlated (> 0.8) with the EOG.

    Parameters
    ----------
    data : ndarray (n_channels, n_samples)
        Filtered signals in volts.
    ica_decim : int or "auto"
        Decimation of the samples used to *fit* the unmixing matrix ("auto": at most
        :data:`ICA_FIT_MAX_SAMPLES` samples).
    copy : bool
        Work on a copy (default) or clean ``data`` in place.
    engine : {"numpy", "mne"}
        ``"numpy"`` (default): MNE's fastica ICA and ``find_bads_eog`` computed step for
        step in NumPy/SciPy (no scikit-learn import); ``"mne"``: with
        :class:`mne.preprocessing.ICA` itself. Both give the same signals.

    Returns
    -------
    cleaned : ndarray
        Same shape; only EEG rows change.
    info : dict
        What ICA did (``ran``, ``excluded_components``, ``eog_scores``, ``decim``).
    """
    eeg = [i for i, r in enumerate(roles) if r == "eeg"]
    eog = [i for i, r in enumerate(roles) if r == "eog"]
    info: dict[str, Any] = {"ran": False, "excluded_components": [], "eog_scores": [],
                            "decim": None, "skipped_reason": None}
    if len(eeg) < 2:
        info["skipped_reason"] = f"fewer than 2 EEG channels (have {len(eeg)})"
        return data, info
    if not eog:
        # without an EOG channel no component can be flagged, so ICA is the identity
        info["skipped_reason"] = "no EOG channel"
        return data, info
    n = data.shape[1]
    decim = (max(1, math.ceil(n / ICA_FIT_MAX_SAMPLES)) if ica_decim == "auto"
             else int(ica_decim))
    if engine not in ("numpy", "mne"):
        raise ValueError(f"engine must be 'numpy' or 'mne', got {engine!r}")
    picks = eeg + [eog[0]]
    sdec = ICA_SCORE_DECIM if sfreq / ICA_SCORE_DECIM >= 48.0 else 1
    if engine == "numpy":
        work = np.array(data, dtype=np.float64, copy=True) if copy else data
        sel = work if picks == list(range(len(work))) else work[picks]
        k = len(eeg)
        # copies, as MNE's get_data makes them (the steps below work in place)
        ica = _fit_eeg_ica(np.array(sel[:k, ::decim]), ICA["random_state"], ICA["max_iter"])
        scores = _eog_scores(ica, np.array(sel[:k, ::sdec]), np.array(sel[k, ::sdec]),
                             sfreq / sdec)
        bad = np.where(abs(scores) > ICA["eog_threshold"])[0]
        bads = [int(b) for b in bad[np.abs(scores[bad]).argsort()[::-1]]]
        info.update(ran=True, decim=decim, score_decim=sdec, excluded_components=bads,
                    eog_scores=[float(x) for x in np.ravel(scores)], n_iter=ica.n_iter)
        if bads:  # sel[:k] is work's (or a copy's) EEG, overwritten right after
            work[eeg] = ica.remove(sel[:k], bads)
        return work, info
    import mne

    names = [f"{ch_names[i]}#{k}" for k, i in enumerate(picks)]  # unique labels
    minfo = mne.create_info(names, sfreq, ["eeg"] * len(eeg) + ["eog"], verbose="ERROR")
    work = np.array(data, dtype=np.float64, copy=True) if copy else data
    sel = work if picks == list(range(len(work))) else work[picks]
    raw = mne.io.RawArray(sel, minfo, copy="auto", verbose="ERROR")  # shares float64 data
    ica = mne.preprocessing.ICA(n_components=len(eeg), method=ICA["method"],
                                random_state=ICA["random_state"], max_iter=ICA["max_iter"],
                                verbose="ERROR")
    # fit on a decimated copy: ICA.fit(decim=...) would still compute the explained
    # variance on every sample, which costs more than the fit itself
    fit_raw = raw if decim == 1 else mne.io.RawArray(
        np.ascontiguousarray(sel[:, ::decim]), minfo, verbose="ERROR")
    ica.fit(fit_raw, picks=names[:-1], verbose="ERROR")
    # find_bads_eog band-passes sources and EOG to 1-10 Hz before correlating them; at
    # 100 Hz every 2nd sample carries that band unaliased (the EEG is low-passed at
    # 30 Hz, so what folds over lands above 12.5 Hz and is filtered out), which halves
    # the samples and the filter taps: scores agree with the full-rate ones to ~1e-5
    score_raw = raw if sdec == 1 else mne.io.RawArray(
        np.ascontiguousarray(sel[:, ::sdec]),
        mne.create_info(names, sfreq / sdec, ["eeg"] * len(eeg) + ["eog"], verbose="ERROR"),
        verbose="ERROR")
    bads, scores = ica.find_bads_eog(score_raw, ch_name=names[-1],
                                     threshold=ICA["eog_threshold"],
                                     measure=ICA["eog_measure"], verbose="ERROR")
    del score_raw
    info.update(ran=True, decim=decim, score_decim=sdec,
                excluded_components=[int(b) for b in bads],
                eog_scores=[float(s) for s in np.ravel(scores)])
    if bads:
        ica.apply(raw, exclude=list(bads), verbose="ERROR")  # in place, EEG picks only
        if raw._data is not work:  # noqa: SLF001 - a subset or converted copy
            work[eeg] = raw.get_data(picks=names[:-1])
    return work, info

