"""Reading PSG files other tools made (issue #26): GDF rates, EDF+D gaps, annotation-only
EDF files and sub-second start times.

The files are written here by minimal writers that follow the format specifications
(GDF 2.20, EDF+), so every expected value is known by construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hypnoscope.io.psg import read_psg, recording_info

# ---------------------------------------------------------------- GDF 2.20 writer


def write_gdf(path: Path, signals: dict[str, np.ndarray], record_length: tuple[int, int],
              samples_per_record: int, phys_range: float = 500.0) -> Path:
    """A GDF 2.20 file of int16 channels in µV (fixed header, one 256-byte variable
    header block per channel, data records; no event table). ``record_length`` is the
    record duration as the fraction ``(numerator, denominator)`` seconds."""
    names = list(signals)
    ns = len(names)
    data = np.array([signals[c] for c in names], dtype=float)
    n_records = data.shape[1] // samples_per_record
    fixed = bytearray(256)
    fixed[0:8] = b"GDF 2.20"
    fixed[8:74] = b"X X".ljust(66)
    fixed[88:152] = b"test".ljust(64)
    fixed[184:186] = np.uint16(ns + 1).tobytes()  # header length in 256-byte blocks
    fixed[236:244] = np.int64(n_records).tobytes()
    fixed[244:252] = np.array(record_length, dtype=np.uint32).tobytes()
    fixed[252:254] = np.uint16(ns).tobytes()

    def field(values, dtype) -> bytes:
        return np.asarray(values, dtype=dtype).tobytes()

    var = b"".join([
        b"".join(c.encode().ljust(16) for c in names),       # labels
        b" " * 80 * ns,                                       # transducer
        b"uV".ljust(6) * ns,                                  # physical dimension (old)
        field([4275] * ns, "<u2"),                            # µV unit code
        field([-phys_range] * ns, "<f8"), field([phys_range] * ns, "<f8"),
        field([-32768] * ns, "<f8"), field([32767] * ns, "<f8"),
        b" " * 68 * ns,                                       # prefiltering (obsolete)
        field([0] * ns, "<f4") * 3,                           # low-pass, high-pass, notch
        field([samples_per_record] * ns, "<i4"),              # samples per record
        field([3] * ns, "<i4"),                               # int16
        field([0] * 3 * ns, "<f4"),                           # electrode positions
        field([0] * 5 * ns, "<f4"),                           # impedances (2.19+)
    ])
    assert len(var) == 256 * ns
    digital = np.round((data + phys_range) / (2 * phys_range) * 65535 - 32768)
    digital = np.clip(digital, -32768, 32767).astype("<i2")
    records = digital[:, : n_records * samples_per_record].reshape(
        ns, n_records, samples_per_record).transpose(1, 0, 2)
    path.write_bytes(bytes(fixed) + var + records.tobytes())
    return path


@pytest.mark.parametrize(("record_length", "per_record"), [((1, 150), 1), ((2, 3), 100)])
def test_gdf_rate_is_samples_per_record_over_the_record_fraction(
        tmp_path, record_length, per_record):
    fs, sec = 150.0, 60.0
    t = np.arange(int(fs * sec)) / fs
    eeg = 40.0 * np.sin(2 * np.pi * 10.0 * t)
    eog = 30.0 * np.sin(2 * np.pi * 0.5 * t)
    path = write_gdf(tmp_path / "night.gdf", {"EEG Fpz-Cz": eeg, "EOG horizontal": eog},
                     record_length, per_record)

    info = recording_info(path)
    assert [c["sfreq"] for c in info["channels"]] == [150.0, 150.0]
    assert info["file_sfreq"] == 150.0
    assert info["duration_sec"] == 60.0

    rec = read_psg(path, sfreq=100.0)
    assert rec.meta["orig_sfreq"] == {"EEG Fpz-Cz": 150.0, "EOG horizontal": 150.0}
    assert rec.meta["resampling"]["EEG Fpz-Cz"] == "150 Hz -> 100 Hz (polyphase)"
    assert rec.n_samples == 6000
    assert not [n for n in rec.meta["notices"] if n.code == "low-rate"]
    # the 10-Hz sine survives (it would alias to nothing kept at every 150th sample)
    t100 = np.arange(6000) / 100.0
    inner = slice(100, -100)
    np.testing.assert_allclose(rec.data[0][inner], 40.0 * np.sin(2 * np.pi * 10 * t100)[inner],
                               atol=0.5)


def test_gdf_test_file_of_mne_is_150_hz():
    """MNE's own ``GDF/test_1ch.gdf`` (mne-testing-data; present only where MNE's testing
    data were downloaded): one 150-Hz channel in records of 1/150 s."""
    import mne

    root = mne.datasets.testing.data_path(download=False)
    path = Path(root) / "GDF" / "test_1ch.gdf" if root else None
    if path is None or not path.is_file():
        pytest.skip("MNE testing data not downloaded")
    info = recording_info(path)
    assert [(c["name"], c["sfreq"]) for c in info["channels"]] == [("ECG", 150.0)]
    assert info["duration_sec"] == 30.0
