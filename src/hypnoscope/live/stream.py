"""Real-time staging of a live Lab Streaming Layer (LSL) stream, epoch by epoch.

The LSL side uses mne-lsl (the MNE project's real-time layer, which bundles liblsl):
:func:`stream_lsl` reads a stream with :class:`mne_lsl.lsl.StreamInlet` (every sample
exactly once, in order -- :class:`mne_lsl.stream.StreamLSL` keeps a ring buffer of the
most recent seconds, made for windows of recent data, while staging needs each sample
once), writes every staged epoch as it comes (a TSV line and an LSL marker) and
:class:`ReplayOutlet` replays a recording as an LSL stream (a
:class:`mne_lsl.lsl.StreamOutlet` pushing chunks at ``speed`` x real time) for testing.

The causal model
----------------
Staging happens in :class:`StreamingStager`, which the live stream and the offline
:func:`stage_causal` share, so that *streamed == offline of the causal model* holds
exactly. With look-ahead ``k`` epochs (0 = causal), epoch ``t`` is staged as soon as
epochs ``0 .. t+k`` are complete, and its stage is exactly what offline staging of the
recording *truncated after epoch t+k* gives for epoch ``t``; the last ``k`` epochs of a
stream are staged when it ends, like the end of a recording offline. Every step reads
only data up to ``t+k``:

1. **Band-pass** (:class:`CausalBandPower`): the linear-phase FIR of the offline
   pipeline (:data:`hypnoscope.signal.bandpower.FILTERS`, MNE's default design) applied causally,
   epoch by epoch with its state carried over; its group delay (3.3 s at 100 Hz) is
   compensated by reading each epoch that much later, so an epoch's band powers are
   those of the zero-phase filter and are ready 3.3 s after the epoch ends. At the end
   of a stream the delay is flushed with zeros.
2. **No ICA**: the offline pipeline removes eye components with an ICA fitted on the
   whole night; the causal pipeline has no such fit and keeps the EEG as filtered.
3. **Per-night z-score -> running statistics**: the offline z-score of each channel over
   the night becomes the z-score over the epochs received so far (``0 .. t+k``, from
   per-epoch sums, :meth:`hypnoscope.signal.bandpower.BandPowerNight.window_std`).
4. **Temporal context and the model's per-night normalisation**: the model (the shipped
   ``default`` lightgbm-context, or any model staging band-power nights, e.g. a
   ``causal`` SSNet trained on band powers) stages the truncated night; its centred
   rolling windows see at most ``k`` future epochs and are padded at the truncation as
   at the end of a recording, its per-night robust scaling uses epochs ``0 .. t+k``
   (running statistics), and its past-only windows are unchanged.

Not done live: the per-epoch signal-quality checks and the sleep-period normalisation
window of :func:`hypnoscope.staging.pipeline.stage_recording` (both need the whole night).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.signal import bandpower
from hypnoscope.signal.bandpower import BandPowerNight
from hypnoscope.stages import stage_names

#: Epoch length (s) and working rate (Hz) of live staging (those of the band-power models).
EPOCH_SEC = bandpower.EPOCH_SEC
SFREQ = bandpower.SFREQ
#: Columns of the per-epoch TSV.
TSV_COLUMNS = ("epoch", "onset", "stage", "confidence")
#: One character per stage in the live hypnogram strip.
STRIP_CHARS = {"W": "W", "N1": "1", "N2": "2", "N3": "3", "R": "R", "NREM": "N"}
#: Seconds the marker outlet stays open after the last epoch while listeners are
#: connected: liblsl sends asynchronously, and an outlet destroyed right after a push can
#: drop the markers still on their way.
MARKER_LINGER_SEC = 0.5


# ------------------------------------------------------------------ causal spectra
def causal_filters(roles: list[str], sfreq: float = SFREQ) -> tuple[np.ndarray, int]:
    """FIR band-pass per channel ``(n_channels, n_taps)`` (the offline pipeline's MNE
    design, zero-padded to one length) and its group delay in samples."""
    taps = []
    for role in roles:
        if role not in ("eeg", "eog"):
            raise ValueError(f"live staging filters EEG and EOG channels; got role {role!r}")
        taps.append(bandpower.band_filter_taps(role, sfreq))
    n = max(len(h) for h in taps)
    if any(len(h) % 2 == 0 for h in taps):  # pragma: no cover - MNE designs odd lengths
        raise RuntimeError("expected odd-length linear-phase FIR filters")
    h = np.stack([np.pad(t, ((n - len(t)) // 2,)) for t in taps])
    return h, (n - 1) // 2


class CausalBandPower:
    """Per-epoch spectra of a signal that arrives in chunks, computed causally.

    Parameters
    ----------
    roles : list of str
        ``eeg`` / ``eog`` per channel (filters as :data:`hypnoscope.signal.bandpower.FILTERS`).
    ch_names : list of str
    sfreq : float
        Must be 100 Hz (the band-power models' rate).

    Notes
    -----
    Samples are buffered and filtered one whole epoch at a time (``scipy.signal.lfilter``
    with its state carried), so the results do not depend on how the stream was cut
    into chunks: pushing a recording at once gives bit for bit what pushing it sample
    by sample does.
    """

    def __init__(self, roles: list[str], ch_names: list[str], sfreq: float = SFREQ) -> None:
        if not np.isclose(sfreq, SFREQ):
            raise ValueError(f"live staging needs {SFREQ:g} Hz signals, got {sfreq:g} Hz")
        self.roles, self.ch_names, self.sfreq = list(roles), list(ch_names), float(sfreq)
        self.h, self.delay = causal_filters(self.roles, self.sfreq)
        self.n_times = int(round(EPOCH_SEC * self.sfreq))
        self._zi = np.zeros((len(roles), self.h.shape[1] - 1))
        self._raw = np.zeros((len(roles), 0))
        self._filtered = np.zeros((len(roles), 0))
        self._skip = self.delay  # filtered samples before epoch 0 (the group delay)
        self.n_samples = 0
        self._rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.finished = False

    @property
    def n_epochs(self) -> int:
        """Complete epochs so far."""
        return len(self._rows)

    def _filter_block(self, block: np.ndarray) -> None:
        from scipy import signal

        out = np.empty_like(block)
        for c in range(block.shape[0]):
            out[c], self._zi[c] = signal.lfilter(self.h[c], 1.0, block[c], zi=self._zi[c])
        if self._skip:
            k = min(self._skip, out.shape[1])
            out, self._skip = out[:, k:], self._skip - k
        self._filtered = np.concatenate([self._filtered, out], axis=1)
        while self._filtered.shape[1] >= self.n_times:
            ep = self._filtered[:, :self.n_times]
            self._filtered = self._filtered[:, self.n_times:]
            e = ep[None]
            self._rows.append((bandpower.welch_band_powers(e, self.sfreq)[0], ep.sum(axis=-1),
                               np.einsum("ct,ct->c", ep, ep), np.ptp(ep, axis=-1)))

    def push(self, data_uv: np.ndarray) -> int:
        """Add samples ``(n_channels, n)`` in µV; returns the number of complete epochs."""
        if self.finished:
            raise RuntimeError("the stream was finished; no more samples are taken")
        x = np.asarray(data_uv, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(self.roles):
            raise ValueError(f"expected samples of shape ({len(self.roles)}, n), got {x.shape}")
        x = np.nan_to_num(x * 1e-6, nan=0.0, posinf=0.0, neginf=0.0)  # volts, as offline
        self._raw = np.concatenate([self._raw, x], axis=1)
        self.n_samples += x.shape[1]
        n_blocks = self._raw.shape[1] // self.n_times
        for b in range(n_blocks):  # one epoch per filter call, however the chunks came
            self._filter_block(self._raw[:, b * self.n_times:(b + 1) * self.n_times])
        self._raw = self._raw[:, n_blocks * self.n_times:]
        return self.n_epochs

    def finish(self) -> int:
        """End of the stream: flush the filter delay with zeros (a last incomplete epoch
        is dropped, as offline); returns the number of complete epochs."""
        if not self.finished:
            n_full = self.n_samples // self.n_times
            need = n_full * self.n_times + self.delay - (self.n_samples - self._raw.shape[1])
            pad = max(0, need - self._raw.shape[1])
            tail = np.concatenate([self._raw, np.zeros((len(self.roles), pad))], axis=1)
            self._raw = np.zeros((len(self.roles), 0))
            self._filter_block(tail[:, :need] if need > 0 else tail[:, :0])
            del self._rows[n_full:]
            self.finished = True
        return self.n_epochs

    def night(self, n: int | None = None) -> BandPowerNight:
        """The spectra of epochs ``0 .. n-1`` (all complete epochs by default)."""
        rows = self._rows[:n]
        if not rows:
            raise ValueError("no complete epoch yet")
        bp, s, sq, ptp = (np.stack(a) for a in zip(*rows, strict=True))
        return BandPowerNight(band_powers=bp, sums=s, sq_sums=sq, peak_to_peak=ptp,
                              n_times=self.n_times, onsets_sec=np.arange(len(rows)) * EPOCH_SEC,
                              ch_names=self.ch_names, roles=self.roles,
                              meta={"causal": True, "filter_delay_samples": self.delay})


# ------------------------------------------------------------------ staging
@dataclass
class EpochResult:
    """One staged epoch: ``epoch`` index, ``onset`` (s from the stream start), ``stage``
    label, ``code``, ``confidence``, ``proba`` per class, ``data_epochs`` (epochs of
    data the decision used: ``t + k + 1`` or all at the end) and ``latency_sec`` (from
    receiving the data that completed it to the result, set when streamed)."""

    epoch: int
    onset: float
    stage: str
    code: int
    confidence: float
    proba: np.ndarray
    data_epochs: int
    latency_sec: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def stream_channels(ch_names: list[str], eeg=None, eog=None) -> tuple[list[int], list[str]]:
    """Indices of the stream channels the band-power model reads (two EEG, one EOG, in
    :data:`hypnoscope.signal.bandpower.CHANNEL_LAYOUT` order) and their roles, from the channel
    names (:func:`hypnoscope.io.channels.guess_role`) or ``eeg``/``eog`` overrides."""
    from hypnoscope.io.channels import guess_role

    eeg = [eeg] if isinstance(eeg, str) else list(eeg or [])
    eog = [eog] if isinstance(eog, str) else list(eog or [])
    for c in eeg + eog:
        if c not in ch_names:
            raise ValueError(f"channel {c!r} is not in the stream (channels: {ch_names})")
    roles = []
    for c in ch_names:
        r = "eeg" if c in eeg else "eog" if c in eog else None
        if r is None and not (eeg and eog):
            r = guess_role(c)
            r = None if (eeg and r == "eeg") or (eog and r == "eog") else r
        roles.append(r if r in ("eeg", "eog") else "other")
    idx = bandpower.select_bandpower_channels(list(ch_names), roles, source="LSL stream",
                                              explicit=bool(eeg))
    return idx, [roles[i] for i in idx]


class StreamingStager:
    """Stage a stream of signal chunks epoch by epoch with look-ahead ``lookahead``.

    Parameters
    ----------
    ch_names : list of str
        Channels of the incoming samples (in order).
    model : str, path or model
        A model that stages band-power nights (default: the shipped ``default``).
    lookahead : int
        Future epochs waited for before staging an epoch (0 = causal).
    eeg, eog : channel names, optional
        Overrides of the channel choice.
    sfreq : float
        Rate of the incoming samples (100 Hz).

    See the module docstring for what each step uses; :meth:`push` and :meth:`finish`
    return the epochs staged by that call.
    """

    def __init__(self, ch_names: list[str], model: Any = "default", lookahead: int = 0,
                 eeg=None, eog=None, sfreq: float = SFREQ) -> None:
        from hypnoscope.models.storage import load_staging_model
        from hypnoscope.staging.model_input import BANDPOWER, input_kind

        if int(lookahead) < 0:
            raise ValueError(f"look-ahead must be >= 0 epochs, got {lookahead}")
        self.model, self.card = load_staging_model(model)
        if input_kind(self.model, self.card) != BANDPOWER:
            raise ValueError(f"model {self.card.get('name')!r} stages raw signals; live "
                             "staging supports models on band-power features (the shipped "
                             "'default', or one trained with 'hypnoscope train --features')")
        self.lookahead = int(lookahead)
        self.stream_ch_names = list(ch_names)
        self.picks, roles = stream_channels(list(ch_names), eeg, eog)
        self.ch_names = [ch_names[i] for i in self.picks]
        self.spectra = CausalBandPower(roles, self.ch_names, sfreq)
        self.classes = stage_names(self.model.n_classes)
        self.n_staged = 0
        from hypnoscope.models.feature_classifiers import FeatureStagingModel
        from hypnoscope.models.vote import CrossFitVote

        self._rows = isinstance(self.model, FeatureStagingModel | CrossFitVote)
        self._warm_up()

    def _warm_up(self) -> None:
        """One prediction on noise features, so that the first live epoch does not pay
        for the model's lazy set-up (LightGBM builds its booster on first use)."""
        from hypnoscope.staging.model_input import bandpower_night

        x = np.random.default_rng(0).standard_normal(
            (3, len(bandpower.CHANNEL_LAYOUT), len(bandpower.FEATURE_NAMES)))
        self.model.predict_proba(bandpower_night(
            x.astype(np.float32), bandpower.CHANNEL_LAYOUT, bandpower.CHANNEL_ROLES,
            subject_id="warm-up", night_id="warm-up"))

    def _stage(self, t: int, n_avail: int) -> EpochResult:
        from hypnoscope.staging.model_input import bandpower_night

        t0 = time.perf_counter()
        night = self.spectra.night(n_avail)
        feats = night.features(slice(0, n_avail))  # running z-score: epochs 0 .. t+k
        nt = bandpower_night(feats, bandpower.CHANNEL_LAYOUT, bandpower.CHANNEL_ROLES,
                             night.onsets_sec, subject_id="stream", night_id="stream")
        if self._rows:  # feature models: the classifier on epoch t's row only
            p = np.asarray(self.model.predict_proba(nt, rows=[t]), float)[0]
        else:
            p = np.asarray(self.model.predict_proba(nt), float)[t]
        code = int(p.argmax())
        return EpochResult(epoch=t, onset=t * EPOCH_SEC, stage=self.classes[code], code=code,
                           confidence=float(p[code]), proba=p, data_epochs=n_avail,
                           extra={"compute_sec": time.perf_counter() - t0})

    def _ready(self, final: bool) -> list[EpochResult]:
        n = self.spectra.n_epochs
        out = []
        while self.n_staged < n and (final or self.n_staged + self.lookahead < n):
            t = self.n_staged
            out.append(self._stage(t, n if final else t + self.lookahead + 1))
            self.n_staged += 1
        return out

    def push(self, data_uv: np.ndarray) -> list[EpochResult]:
        """Samples ``(n_stream_channels, n)`` in µV in; the epochs now stageable out."""
        self.spectra.push(np.asarray(data_uv)[self.picks])
        return self._ready(final=False)

    def finish(self) -> list[EpochResult]:
        """End of the stream: stage the last epochs with the data there is."""
        self.spectra.finish()
        return self._ready(final=True)


def stage_causal(recording, model: Any = "default", lookahead: int = 0, eeg=None,
                 eog=None) -> list[EpochResult]:
    """Offline staging of a recording by the causal model: what :func:`stream_lsl` gives
    for the same recording streamed (see the module docstring)."""
    from hypnoscope.signal.checks import read_psg_checked

    rec = read_psg_checked(recording, sfreq=SFREQ, include_emg=False)
    stager = StreamingStager(list(rec.ch_names), model, lookahead, eeg=eeg, eog=eog)
    return stager.push(rec.data) + stager.finish()


# ------------------------------------------------------------------ outputs
def hypnogram_strip(stages: list[str], width: int = 80) -> str:
    """The last ``width`` stages as one character each (``W 1 2 3 R``)."""
    return "".join(STRIP_CHARS.get(s, "?") for s in stages[-width:])


class EpochWriter:
    """Writes staged epochs as they come: ``DIR/<name>.stages.tsv`` (a header, then one
    line per epoch, each written whole, flushed and fsynced, so a line is complete or
    absent) and an LSL marker outlet ``<name>-stages`` (one JSON string per epoch)."""

    def __init__(self, out_dir: str | os.PathLike | None, name: str, classes: tuple[str, ...],
                 markers: bool = True) -> None:
        self.classes = classes
        self.path = None
        self._f = None
        if out_dir is not None:
            folder = Path(out_dir)
            folder.mkdir(parents=True, exist_ok=True)
            self.path = stages_path(out_dir, name)
            if self.path.exists():
                raise ValueError(f"{self.path} exists (an earlier session of stream {name!r}); "
                                 "remove it or choose another output folder")
            self._f = open(self.path, "x", encoding="utf-8")  # noqa: SIM115 - kept open
            cols = [*TSV_COLUMNS, *(f"p_{c}" for c in classes), "data_epochs", "latency_sec"]
            self._write("\t".join(cols) + "\n")
        self.outlet = None
        if markers:
            from mne_lsl.lsl import StreamInfo, StreamOutlet

            info = StreamInfo(f"{name}-stages", "Markers", 1, 0.0, "string",
                              f"hypnoscope-{_safe(name)}-stages")
            self.outlet = StreamOutlet(info)

    def _write(self, line: str) -> None:
        self._f.write(line)
        self._f.flush()
        os.fsync(self._f.fileno())

    def write(self, r: EpochResult) -> None:
        if self._f is not None:
            vals = [str(r.epoch), f"{r.onset:g}", r.stage, f"{r.confidence:.6g}",
                    *(f"{p:.6g}" for p in r.proba), str(r.data_epochs),
                    "" if r.latency_sec is None else f"{r.latency_sec:.4f}"]
            self._write("\t".join(vals) + "\n")
        if self.outlet is not None:
            self.outlet.push_sample([json.dumps(
                {"epoch": r.epoch, "onset": r.onset, "stage": r.stage,
                 "confidence": round(r.confidence, 6),
                 "proba": dict(zip(self.classes, np.round(r.proba, 6).tolist(),
                                   strict=True))})])

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if self.outlet is not None and self.outlet.has_consumers:
            time.sleep(MARKER_LINGER_SEC)  # let listeners receive the last markers
        self.outlet = None


def stages_path(out_dir: str | os.PathLike, name: str) -> Path:
    """The per-epoch TSV of stream ``name`` in ``out_dir``."""
    return Path(out_dir) / f"{_safe(name)}.stages.tsv"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "stream"


# ------------------------------------------------------------------ LSL
def _resolve(name: str, timeout: float):
    from mne_lsl.lsl import resolve_streams

    found = resolve_streams(timeout=timeout, name=name)
    if not found:
        raise ValueError(f"no LSL stream named {name!r} found within {timeout:g} s (is the "
                         "source running? replay a file with --replay FILE.edf)")
    return found[0]


def lsl_chunks(name: str, resolve_timeout: float = 10.0, idle_timeout: float = 5.0,
               ) -> Iterator[tuple[list[str], float, np.ndarray | None, float]]:
    """Yield ``(channel names, sfreq, samples (n_channels, n) or None, receive time)`` from
    the LSL stream ``name`` until no sample came for ``idle_timeout`` seconds. The first
    item carries no samples (the stream's layout)."""
    from mne_lsl.lsl import StreamInlet

    inlet = StreamInlet(_resolve(name, resolve_timeout), max_buffered=3600)
    inlet.open_stream(timeout=resolve_timeout)
    info = inlet.get_sinfo(timeout=resolve_timeout)  # the full description (channels)
    names = info.get_channel_names() or [f"ch{i + 1}" for i in range(info.n_channels)]
    try:
        yield list(names), float(info.sfreq), None, time.perf_counter()
        last = time.perf_counter()
        while True:
            data, _ts = inlet.pull_chunk(timeout=0.05, max_samples=100_000)
            now = time.perf_counter()
            if len(data):
                last = now
                # a copy: mne-lsl may reuse the array of a pull for the next one
                yield list(names), float(info.sfreq), np.array(data, float).T, now
            elif now - last > idle_timeout:
                return
    finally:
        inlet.close_stream()


@dataclass
class StreamSummary:
    """What :func:`stream_lsl` did: ``results`` per epoch, the TSV ``path``, the
    channels used and the wall time."""

    results: list[EpochResult]
    path: Path | None
    channels: list[str]
    seconds: float


def stream_lsl(name: str, model: Any = "default", lookahead: int = 0,
               out_dir: str | os.PathLike | None = None, eeg=None, eog=None,
               resolve_timeout: float = 10.0, idle_timeout: float = 5.0,
               markers: bool = True, on_epoch: Callable[[EpochResult], None] | None = None,
               ) -> StreamSummary:
    """Stage the LSL stream ``name`` live until it stops (no sample for
    ``idle_timeout`` s); every epoch is written (TSV in ``out_dir``, LSL marker) and
    passed to ``on_epoch`` as soon as it is staged."""
    t0 = time.perf_counter()
    stager = writer = None
    results: list[EpochResult] = []

    def emit(batch: list[EpochResult], received: float) -> None:
        for r in batch:
            r.latency_sec = time.perf_counter() - received
            writer.write(r)
            results.append(r)
            if on_epoch is not None:
                on_epoch(r)

    # a reader thread drains the inlet into a queue, so that samples are never dropped
    # from liblsl's buffer while an epoch is being staged
    chunks: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for item in lsl_chunks(name, resolve_timeout, idle_timeout):
                chunks.put(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            chunks.put(exc)
        finally:
            chunks.put(None)

    reader = threading.Thread(target=read, name=f"lsl-{name}", daemon=True)
    reader.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            names, sfreq, data, received = item
            if stager is None:
                stager = StreamingStager(names, model, lookahead, eeg=eeg, eog=eog,
                                         sfreq=sfreq)
                writer = EpochWriter(out_dir, name, stager.classes, markers=markers)
            if data is not None:
                emit(stager.push(data), received)
        if stager is not None:
            emit(stager.finish(), time.perf_counter())
    finally:
        if writer is not None:
            writer.close()
    return StreamSummary(results, None if writer is None else writer.path,
                         [] if stager is None else stager.ch_names, time.perf_counter() - t0)


class ReplayOutlet(threading.Thread):
    """Replay a recording as an LSL stream: its EEG/EOG channels (µV, 100 Hz, float64)
    pushed in chunks of ``chunk_sec`` at ``speed`` x real time, once a consumer is
    connected (waits up to ``wait_sec``).

    Start it (``.start()``), stage the stream ``name``, ``.join()``; ``error`` holds an
    exception raised in the thread.
    """

    def __init__(self, recording, name: str = "hypnoscope-replay", speed: float = 60.0,
                 chunk_sec: float = 1.0, wait_sec: float = 30.0) -> None:
        from hypnoscope.signal.checks import read_psg_checked

        super().__init__(daemon=True, name=f"replay-{name}")
        if speed <= 0:
            raise ValueError(f"--speed must be > 0, got {speed}")
        self.rec = read_psg_checked(recording, sfreq=SFREQ, include_emg=False)
        self.name_, self.speed, self.chunk_sec, self.wait_sec = name, speed, chunk_sec, wait_sec
        self.error: BaseException | None = None
        self.samples_sent = 0
        from mne_lsl.lsl import StreamInfo, StreamOutlet

        info = StreamInfo(name, "EEG", self.rec.n_channels, float(self.rec.sfreq), "float64",
                          f"hypnoscope-replay-{_safe(name)}")
        info.set_channel_names(list(self.rec.ch_names))
        info.set_channel_types([r if r in ("eeg", "eog") else "misc"
                                for r in self.rec.roles])
        info.set_channel_units(["microvolts"] * self.rec.n_channels)
        self.outlet = StreamOutlet(info, chunk_size=max(1, int(chunk_sec * self.rec.sfreq)))

    def run(self) -> None:
        try:
            if not self.outlet.wait_for_consumers(self.wait_sec):
                raise TimeoutError(f"no consumer connected to {self.name_!r} in "
                                   f"{self.wait_sec:g} s")
            n = int(round(self.chunk_sec * self.rec.sfreq))
            data = np.ascontiguousarray(self.rec.data.T, dtype=np.float64)
            start = time.perf_counter()
            for a in range(0, len(data), n):
                due = start + a / self.rec.sfreq / self.speed
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self.outlet.push_chunk(data[a:a + n])
                self.samples_sent = min(a + n, len(data))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc


def print_progress(r: EpochResult, stages: list[str], stream=None) -> None:
    """The live terminal line (on ``stream``, default stderr): epoch, time, stage,
    confidence, latency and the hypnogram strip (rewritten in place on a terminal, one
    line per epoch otherwise)."""
    stream = sys.stderr if stream is None else stream
    stages.append(r.stage)
    lat = "" if r.latency_sec is None else f" {1000 * r.latency_sec:5.0f} ms"
    line = (f"epoch {r.epoch:4d} {r.onset / 60:6.1f} min {r.stage:>4} "
            f"{r.confidence:.2f}{lat} |{hypnogram_strip(stages, 60)}|")
    if stream.isatty():
        stream.write("\r" + line + "\033[K")
    else:
        stream.write(line + "\n")
    stream.flush()


__all__ = ["CausalBandPower", "StreamingStager", "EpochResult", "EpochWriter",
           "ReplayOutlet", "StreamSummary", "stage_causal", "stream_lsl", "lsl_chunks",
           "stream_channels", "causal_filters", "hypnogram_strip", "print_progress",
           "stages_path"]
