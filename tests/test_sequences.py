"""Tests of hypnoscope.training.sequences: windows over nights, multi-view batches, normalisation at
gather time, unlabelled nights, memory-mapped nights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypnoscope.datasets import Night
from hypnoscope.signal.normalize import normalize_epochs
from hypnoscope.stages import UNSCORED, to_3class
from hypnoscope.training.sequences import SequenceDataset, sequence_windows, to_device
from two_phase_setup import make_nights


def test_sequence_windows_values():
    idx, mask = sequence_windows(5, 3)
    assert idx.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert mask.tolist()[:2] == [[False, False, True], [False, True, True]] and mask[2:].all()
    idx, mask = sequence_windows(7, 3, mode="many-to-many")
    assert idx.tolist() == [[0, 1, 2], [3, 4, 5], [4, 5, 6]] and mask.all()
    idx, mask = sequence_windows(7, 3, mode="many-to-many", stride=2)
    assert idx[:, 0].tolist() == [0, 2, 4]
    idx, mask = sequence_windows(2, 4, mode="many-to-many")
    assert idx.tolist() == [[0, 1, 1, 1]] and mask.tolist() == [[True, True, False, False]]
    for kwargs, msg in (({"seq_len": 0}, "seq_len"), ({"mode": "x"}, "mode must be")):
        with pytest.raises(ValueError, match=msg):
            sequence_windows(5, **{"seq_len": 3, **kwargs})


def test_many_to_one_windows_shapes_masks_and_targets():
    nights = make_nights(n_nights=2, n_epochs=30, unscored=(3,))
    ds = SequenceDataset(nights, seq_len=5, mode="many-to-one")
    # one window per scored epoch (one unscored epoch per night is dropped)
    assert len(ds) == 2 * 29
    b = ds.__getitems__([0, 1, 2])
    assert set(b["x"]) == {"feat"}
    assert b["x"]["feat"].shape == (3, 5, 4) and b["mask"].shape == (3, 5)
    assert b["y"].shape == (3,)
    # first window of a night: 4 padded positions on the left, target = epoch 0
    assert b["mask"][0].tolist() == [False, False, False, False, True]
    assert int(b["y"][0]) == nights[0].y[0]
    torch.testing.assert_close(b["x"]["feat"][0, -1], torch.from_numpy(nights[0].X[0]))
    # windows never cross nights; the target is the label of each window's last epoch
    for j in range(len(ds)):
        k = ds.night_of_window[j]
        assert ds.targets[j] == nights[k].y[ds.index[j, -1]]
    b = ds.__getitems__([28, 29])  # last window of night 0, first of night 1
    assert b["night"].tolist() == [0, 1]
    torch.testing.assert_close(b["x"]["feat"][1, -1], torch.from_numpy(nights[1].X[0]))
    full = SequenceDataset(nights, seq_len=5, drop_unlabelled=False)
    assert len(full) == 60 and len(full.scored()) == 58


def test_many_to_many_windows_cover_night_and_pad_targets():
    night = make_nights(n_nights=1, n_epochs=23, unscored=())[0]
    ds = SequenceDataset([night], seq_len=10, mode="many-to-many", stride=5)
    covered = np.unique(ds.index[ds.mask])
    np.testing.assert_array_equal(covered, np.arange(23))
    assert ds.targets.shape == (len(ds), 10)
    short = make_nights(n_nights=1, n_epochs=4, unscored=())[0]
    ds2 = SequenceDataset([short], seq_len=6, mode="many-to-many", label_map=to_3class)
    assert ds2.mask.tolist() == [[True] * 4 + [False] * 2]
    assert ds2.targets[0, 4:].tolist() == [UNSCORED, UNSCORED]
    np.testing.assert_array_equal(ds2.targets[0, :4], to_3class(short.y))
    # averaging window outputs back onto epochs
    proba = np.zeros((len(ds), 10, 2))
    proba[..., 0] = ds.index  # each position says its own epoch index
    avg = ds.average_over_epochs(proba)
    np.testing.assert_allclose(avg[:, 0], np.arange(23))


def test_dataset_rejects_mixed_shapes_and_unknown_views():
    a = make_nights(1, n_feat=4)[0]
    b = make_nights(1, n_feat=3)[0]
    with pytest.raises(ValueError, match="different per-epoch shapes of view 'feat'"):
        SequenceDataset([a, b], seq_len=3)
    with pytest.raises(KeyError, match="has no view 'spec'"):
        SequenceDataset([a], seq_len=3, views=["feat", "spec"])
    with pytest.raises(ValueError, match="normalize for view"):
        SequenceDataset([a], seq_len=3, normalize="minmax")


def test_unlabelled_nights_are_served_for_self_supervision():
    nights = make_nights(2, labelled=False)
    with pytest.raises(ValueError, match="no window has a scored target"):
        SequenceDataset(nights, seq_len=4)
    ds = SequenceDataset(nights, seq_len=4, mode="many-to-many", drop_unlabelled=False)
    assert len(ds) > 0 and (ds.targets == UNSCORED).all()
    with pytest.raises(ValueError, match="no window has a scored target"):
        ds.scored()


def test_two_views_normalised_per_night_at_gather_time():
    rng = np.random.default_rng(0)
    nights = []
    for k, (mu, sd) in enumerate([(5.0, 2.0), (-3.0, 0.5)]):
        X = (mu + sd * rng.normal(size=(20, 2, 100))).astype(np.float32)
        spec = rng.normal(size=(20, 2, 3, 5)).astype(np.float32) * (k + 1)
        nights.append(Night(X=X, y=rng.integers(0, 5, 20), subject_id=f"s{k}",
                            night_id=f"n{k}", kind="signals", sfreq=100.0,
                            views={"spec": spec}))
    ds = SequenceDataset(nights, seq_len=4, mode="many-to-many", stride=4,
                         views=["raw", "spec"], normalize="zscore")
    batch = ds.__getitems__(list(range(len(ds))))
    assert batch["x"]["raw"].shape == (len(ds), 4, 2, 100)
    assert batch["x"]["spec"].shape == (len(ds), 4, 2, 3, 5)
    for k, night in enumerate(nights):
        rows = np.flatnonzero(ds.night_of_window == k)
        for r in rows[:2]:
            idx = ds.index[r]
            np.testing.assert_allclose(batch["x"]["raw"][r].numpy(),
                                       normalize_epochs(night.X)[idx], atol=1e-5)
            np.testing.assert_allclose(batch["x"]["spec"][r].numpy(),
                                       normalize_epochs(night.views["spec"])[idx], atol=1e-5)
    # one bad hour excluded from the statistics leaves the rest of the night unchanged
    bad = [n for n in nights]
    bad[0].X[:5] *= 100
    ex = SequenceDataset(bad, seq_len=4, views=["raw"], normalize="zscore",
                         exclude=lambda n: np.arange(n.n_epochs) < 5)
    clean = normalize_epochs(np.asarray(bad[0].X[5:]))
    np.testing.assert_allclose(ex.__getitems__([10])["x"]["raw"][0, -1].numpy(),
                               clean[10 - 5], atol=1e-4)
    moved = to_device(batch, "cpu")
    assert set(moved["x"]) == {"raw", "spec"} and moved["x"]["raw"].device.type == "cpu"


def test_memory_mapped_nights_are_read_not_copied(tmp_path):
    X = np.random.default_rng(1).normal(size=(50, 3, 200)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    night = Night(X=mm, y=np.zeros(50, int), subject_id="s", night_id="n", kind="signals",
                  sfreq=100.0)
    ds = SequenceDataset([night], seq_len=5, mode="many-to-many", normalize=None)
    assert ds._arrays[0]["raw"] is mm  # the dataset keeps the memory map itself
    np.testing.assert_array_equal(ds.__getitems__([0])["x"]["raw"][0].numpy(), X[:5])
