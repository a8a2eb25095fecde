"""Signal augmentations for self-supervised (contrastive) training, on batches of epochs.

The transformations MC²SleepNet's contrastive step draws from (the paper, section 4.1.2):
for raw signals *amplitude scaling*, *amplitude shift*, *additive Gaussian noise*, a
*band-stop filter*, a *time shift* and *zero-masking*; for spectrograms *random noise*.
Each function takes a float tensor whose last axis is time (raw: ``(..., n_times)``) or
the spectrogram's ``(..., n_frames, n_freqs)``, draws its random parameters per sample
(the first axis) from ``generator`` and returns a new tensor; inputs are never modified.
:class:`RandomAugment` applies one transformation, drawn per sample, to a batch.

The ranges are ours (the paper names the transformations, not their strengths) and are
keyword options; they assume per-night standardised signals (unit variance).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _per_sample(x: torch.Tensor, low: float, high: float,
                generator: torch.Generator | None) -> torch.Tensor:
    """Uniform ``[low, high)`` draws, one per sample, shaped to broadcast over ``x``."""
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    u = torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
    return low + (high - low) * u


def amplitude_scale(x: torch.Tensor, low: float = 0.5, high: float = 2.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiply each sample by a factor drawn from ``[low, high)``."""
    return x * _per_sample(x, low, high, generator)


def amplitude_shift(x: torch.Tensor, max_shift: float = 1.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Add a constant offset drawn from ``[-max_shift, max_shift)`` to each sample."""
    return x + _per_sample(x, -max_shift, max_shift, generator)


def gaussian_noise(x: torch.Tensor, std: float = 0.2,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``std``."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * noise


def band_stop(x: torch.Tensor, sfreq: float, width: float = 2.0, low: float = 0.5,
              high: float | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Remove a band ``[f0, f0 + width)`` Hz (``f0`` drawn per sample from ``[low,
    high - width)``; ``high`` defaults to Nyquist) by zeroing its FFT bins along time.

    A zero-phase ideal band-stop: the signal outside the band is unchanged.
    """
    n = x.shape[-1]
    nyq = sfreq / 2.0
    high = nyq if high is None else min(float(high), nyq)
    if not 0 <= low < high - width:
        raise ValueError(f"band_stop: need 0 <= low < high - width, got low={low}, "
                         f"high={high}, width={width}")
    spec = torch.fft.rfft(x, dim=-1)
    freqs = torch.fft.rfftfreq(n, 1.0 / sfreq).to(x.device)
    f0 = _per_sample(x, low, high - width, generator)
    stop = (freqs >= f0) & (freqs < f0 + width)
    return torch.fft.irfft(spec.masked_fill(stop, 0), n=n, dim=-1)


def time_shift(x: torch.Tensor, max_shift: int = 300,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each sample circularly along time by an integer drawn from ``[-max_shift,
    max_shift]`` samples."""
    n = x.shape[-1]
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=generator,
                           device=x.device)
    idx = (torch.arange(n, device=x.device)[None, :] - shifts[:, None]) % n
    idx = idx.reshape((x.shape[0],) + (1,) * (x.ndim - 2) + (n,)).expand(x.shape)
    return torch.gather(x, -1, idx)


def zero_mask(x: torch.Tensor, max_fraction: float = 0.1,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one contiguous stretch of each sample (all channels), of up to
    ``max_fraction`` of its length, at a random position."""
    n = x.shape[-1]
    length = (_per_sample(x, 0.0, max_fraction, generator).reshape(-1) * n).long()
    start = (torch.rand(x.shape[0], generator=generator, device=x.device)
             * (n - length + 1)).long()
    t = torch.arange(n, device=x.device)[None, :]
    keep = ~((t >= start[:, None]) & (t < (start + length)[:, None]))
    return x * keep.reshape((x.shape[0],) + (1,) * (x.ndim - 2) + (n,)).to(x.dtype)


def spectrogram_noise(s: torch.Tensor, std: float = 0.1,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The spectrogram augmentation: add Gaussian noise of ``std`` (in the units of the
    standardised log spectrogram) to every time-frequency bin."""
    return gaussian_noise(s, std, generator)


#: Raw-signal augmentations :class:`RandomAugment` draws from, by name.
RAW_AUGMENTATIONS = ("amplitude_scale", "amplitude_shift", "gaussian_noise", "band_stop",
                     "time_shift", "zero_mask")


class RandomAugment:
    """Apply one raw-signal augmentation per sample, drawn uniformly from ``names``.

    Parameters
    ----------
    sfreq : float
        Sampling rate (for the band-stop filter).
    names : sequence of str
        Augmentations to draw from (default all of :data:`RAW_AUGMENTATIONS`).
    seed : int, optional
        Seed of the generator; None uses PyTorch's global generator (seeded by the
        training loop).
    """

    def __init__(self, sfreq: float, names: Sequence[str] = RAW_AUGMENTATIONS,
                 seed: int | None = None) -> None:
        unknown = set(names) - set(RAW_AUGMENTATIONS)
        if unknown or not names:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; expected some "
                             f"of {list(RAW_AUGMENTATIONS)}")
        self.sfreq, self.names = float(sfreq), tuple(names)
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(int(seed))

    def _apply(self, name: str, x: torch.Tensor) -> torch.Tensor:
        g = self.generator if x.device.type == "cpu" else None
        if name == "band_stop":
            return band_stop(x, self.sfreq, generator=g)
        return globals()[name](x, generator=g)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, ..., n_times)`` -> the augmented copy (one transformation per
        sample)."""
        g = self.generator if x.device.type == "cpu" else None
        which = torch.randint(len(self.names), (x.shape[0],), generator=g)
        out = x.clone()
        for k, name in enumerate(self.names):
            rows = torch.nonzero(which == k).reshape(-1).to(x.device)
            if len(rows):
                out[rows] = self._apply(name, x[rows])
        return out


__all__ = ["RAW_AUGMENTATIONS", "RandomAugment", "amplitude_scale", "amplitude_shift",
           "band_stop", "gaussian_noise", "spectrogram_noise", "time_shift", "zero_mask"]
