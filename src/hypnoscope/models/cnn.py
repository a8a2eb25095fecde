"""Plain CNN on raw 30-s epochs: the sleep stager of Chambon et al. (2018).

Chambon, Galtier, Arnal, Wainrib & Gramfort, "A deep learning architecture for temporal
sleep stage classification using multivariate and multimodal time series", IEEE TNSRE
26(4), 2018 (the MSMAE-CNN paper's reference [22]); the layout follows braindecode's
``SleepStagerChambon2018``: a spatial convolution mixes the ``C`` input channels into ``C``
virtual channels, then two blocks of a temporal convolution (0.5 s kernels, ``n_conv_chs``
filters, ReLU) and max pooling (0.125 s) run over each virtual channel, and the flattened
maps go through dropout (0.25) to a linear classifier. Every channel (EEG, EOG, EMG) enters
the same network: it is the "CNN" baseline of the paper's Table 1.

:class:`CNNModel` (registry name ``cnn``) trains it on single epochs with
:class:`~hypnoscope.models.deep.EpochStagingModel` (per-night z-scored channels,
validation subjects for the best epoch). Presets: ``small`` (the published network, a
CPU schedule) and ``paper`` (the same network, longer training); parameter counts for
the Sleep-EDF layout (4 channels, 100 Hz, 5 classes): **6,841** (``n_conv_chs`` 8).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hypnoscope.models.deep import EpochStagingModel

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"n_conv_chs": 8, "time_conv_size_s": 0.5, "max_pool_size_s": 0.125,
              "dropout": 0.25, "seq_len": 1, "epochs": 10, "batch_size": 128, "lr": 1e-3,
              "patience": 3},
    "paper": {"n_conv_chs": 8, "time_conv_size_s": 0.5, "max_pool_size_s": 0.125,
              "dropout": 0.25, "seq_len": 1, "epochs": 60, "batch_size": 128, "lr": 1e-3,
              "patience": 10},
}
NET_KEYS = ("n_conv_chs", "time_conv_size_s", "max_pool_size_s", "dropout")


class SpatialMix(nn.Module):
    """Chambon's spatial filter: ``(B, C, T)`` -> ``C`` virtual channels ``(B, 1, C, T)``."""

    def __init__(self, n_chans: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, n_chans, (n_chans, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x[:, None]).transpose(1, 2)


class ChambonCNN(nn.Module):
    """Chambon et al. (2018) sleep stager on one epoch ``(B, n_chans, n_times)``.

    Parameters
    ----------
    n_chans, n_outputs, n_times : int
    sfreq : float
    n_conv_chs : int
        Filters of the temporal convolutions.
    time_conv_size_s, max_pool_size_s : float
        Temporal kernel and pooling lengths in seconds (0.5 s and 0.125 s published).
    dropout : float

    Notes
    -----
    Parts: ``encoder`` (spatial mix + two conv/ReLU/max-pool blocks + flatten, to
    ``n_features``) and ``head`` (dropout + linear): ``head(encoder(x))`` are the logits.
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float = 100.0,
                 n_conv_chs: int = 8, time_conv_size_s: float = 0.5,
                 max_pool_size_s: float = 0.125, dropout: float = 0.25) -> None:
        super().__init__()
        self.n_chans, self.n_outputs, self.n_times = int(n_chans), int(n_outputs), int(n_times)
        self.sfreq = float(sfreq)
        k = max(1, int(round(time_conv_size_s * sfreq)))
        pool = max(1, int(round(max_pool_size_s * sfreq)))
        pad = k // 2
        self.encoder = nn.Sequential(
            SpatialMix(n_chans),
            nn.Conv2d(1, n_conv_chs, (1, k), padding=(0, pad)), nn.ReLU(),
            nn.MaxPool2d((1, pool)),
            nn.Conv2d(n_conv_chs, n_conv_chs, (1, k), padding=(0, pad)), nn.ReLU(),
            nn.MaxPool2d((1, pool)), nn.Flatten())
        with torch.no_grad():
            n_feat = self.encoder(torch.zeros(1, n_chans, n_times)).shape[1]
        self.n_features = int(n_feat)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_feat, n_outputs))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, n_outputs)`` of epochs ``(B, n_chans, n_times)``."""
        return self.head(self.encoder(x.float()))


class CNNModel(EpochStagingModel):
    """Night-level Chambon et al. (2018) CNN on raw epochs (registry name ``cnn``).

    Parameters
    ----------
    n_classes : {3, 5}
    **options
        Everything :class:`~hypnoscope.models.deep.DeepStagingModel` takes and the
        network options :data:`NET_KEYS`.
    """

    name = "cnn"
    PRESETS = PRESETS
    NET_KEYS = NET_KEYS
    network_class = ChambonCNN


def make_cnn(name: str = "cnn", n_classes: int = 5, **kw: Any) -> CNNModel:
    """Registry factory of ``cnn``."""
    if name != "cnn":
        raise ValueError(f"make_cnn builds 'cnn', got {name!r}")
    return CNNModel(n_classes=n_classes, **kw)


__all__ = ["ChambonCNN", "SpatialMix", "CNNModel", "PRESETS", "NET_KEYS", "make_cnn"]
