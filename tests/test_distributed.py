"""Distributed training (DistributedDataParallel, gloo on CPU): two processes give the
weights and metrics of one process with the same global batch, through a two-phase run
whose second phase freezes the encoder and whose first phase's loss calls submodules
of the model rather than its forward; only rank 0 writes; a run resumes on another
number of processes."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from hypnoscope.training.loop import TrainConfig, train_model
from hypnoscope.training.sequences import SequenceDataset
from two_phase_setup import EncoderHeadNet, make_nights, phases

#: |w_2proc - w_1proc| bound: the same arithmetic up to the order of float sums.
ATOL = 1e-5


class PlainEncoderHeadNet(EncoderHeadNet):
    """The two-phase test net without batch norm and dropout (per-rank batch statistics
    and per-rank dropout masks are the two things DDP does not make equal to one big
    batch)."""

    def __init__(self, n_feat=4, n_outputs=5, hidden=16):
        super().__init__(n_feat, n_outputs, hidden)
        self.encoder = nn.Sequential(nn.Linear(n_feat, hidden), nn.ReLU())


def _data():
    # every epoch scored, so that each rank's share of a batch has as many targets
    train = SequenceDataset(make_nights(2, unscored=()) + make_nights(
        2, seed=5, labelled=False), 4, mode="many-to-many", stride=2, drop_unlabelled=False)
    val = SequenceDataset(make_nights(1, seed=1, unscored=()), 4, mode="many-to-many",
                          stride=2, drop_unlabelled=False)
    return train, val


def _train(ckpt: str | None, resume: bool = False, finetune_epochs: int = 3):
    train, val = _data()
    torch.manual_seed(0)
    model = PlainEncoderHeadNet()
    result = train_model(model, train, val, phases(finetune_epochs),
                         TrainConfig(seed=3, num_threads=1, checkpoint_dir=ckpt,
                                     resume=resume))
    return model, result


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    """One rank: a full two-phase run (checkpoints in ``out/ckpt``), then a run that
    stops after two of the three fine-tuning epochs (``out/part``), to be resumed."""
    os.environ["LOCAL_RANK"] = str(rank)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}",
                                         rank=rank, world_size=world)
    try:
        model, result = _train(str(Path(out) / "ckpt"))
        torch.save({"state": model.state_dict(), "history": result.history},
                   Path(out) / f"rank{rank}.pt")
        _train(str(Path(out) / "part"), finetune_epochs=2)
        # both ranks done before either tears gloo down (a rank whose peer left first
        # could abort in gloo's teardown on a loaded machine)
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, str(out / "init"), str(out)), nprocs=2, join=True)
    return out


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=ATOL, rtol=0, msg=k)


def test_two_gloo_processes_train_like_one_with_the_same_global_batch(two_processes):
    single, single_res = _train(None)
    runs = [torch.load(two_processes / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    # both ranks end with the same weights, and they are those of one process
    _assert_same_weights(runs[0]["state"], runs[1]["state"])
    _assert_same_weights(runs[0]["state"], single.state_dict())
    # the encoder, frozen in phase 2, ends as phase 1 left it (and phase 1 moved it)
    pre = torch.load(two_processes / "ckpt" / "pretrain" / "best.pt", weights_only=False)
    torch.manual_seed(0)
    init = PlainEncoderHeadNet().state_dict()
    for k in ("encoder.0.weight", "encoder.0.bias"):
        assert torch.equal(runs[0]["state"][k], pre["model"][k])
        assert not torch.allclose(pre["model"][k], init[k], atol=1e-3)
    # metrics reduced over the ranks: the same history as one process
    assert len(runs[0]["history"]) == len(single_res.history) == 6
    for dd, one in zip(runs[0]["history"], single_res.history, strict=True):
        assert dd.keys() == one.keys()
        for k in ("train_loss", "val_loss", "val_acc", "val_macro_f1", "train_acc"):
            if k in one:
                assert dd[k] == pytest.approx(one[k], abs=1e-5), k
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in runs[0]["history"]]
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in runs[1]["history"]] == strip
    # rank 0 wrote the checkpoints and the CSV
    with open(two_processes / "ckpt" / "metrics.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6
    assert {p.name for p in (two_processes / "ckpt").iterdir()} == {
        "metrics.csv", "last.pt", "pretrain", "finetune"}


def test_a_two_process_run_resumes_in_one_process(two_processes, tmp_path):
    """Two processes trained two of the three fine-tuning epochs; one process resumes
    and ends where an uninterrupted one-process run ends."""
    import shutil

    ckpt = tmp_path / "part"
    shutil.copytree(two_processes / "part", ckpt)
    last = torch.load(ckpt / "last.pt", weights_only=False)
    assert (last["phase_index"], last["epoch"]) == (1, 2)
    resumed, res = _train(str(ckpt), resume=True, finetune_epochs=3)
    assert res.resumed_from == ("finetune", 2)
    assert [r["epoch"] for r in res.history if r["phase"] == "finetune"] == [1, 2, 3]
    full, _ = _train(None, finetune_epochs=3)
    _assert_same_weights(resumed.state_dict(), full.state_dict())
