"""Reconstruction and adversarial losses for codec training."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


@functools.lru_cache(maxsize=16)
def _mel_fb(sr: int, n_fft: int, n_mels: int) -> torch.Tensor:
    import librosa

    # HTK mel scale, Slaney area normalisation: the same filters as the MFCC distance metric's (tested)
    return torch.tensor(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=True), dtype=torch.float32)


def _stft_mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    w = torch.hann_window(n_fft, device=x.device)
    s = torch.stft(x, n_fft, hop, window=w, return_complex=True, center=True)
    return s.abs().clamp(min=1e-7)


def multi_resolution_stft(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Spectral convergence + log-magnitude L1 at three resolutions. y, x: (B, n)."""
    loss = y.new_zeros(())
    for n_fft, hop in ((512, 128), (1024, 256), (2048, 512)):
        a, b = _stft_mag(y, n_fft, hop), _stft_mag(x, n_fft, hop)
        sc = torch.linalg.norm(b - a, dim=(1, 2)) / torch.linalg.norm(b, dim=(1, 2)).clamp(min=1e-7)
        loss = loss + sc.mean() + (a.log() - b.log()).abs().mean()
    return loss / 3


def multi_scale_mel(y: torch.Tensor, x: torch.Tensor, sr: int = 16000) -> torch.Tensor:
    loss = y.new_zeros(())
    for n_fft, n_mels in ((256, 32), (512, 64), (1024, 80), (2048, 128)):
        fb = _mel_fb(sr, n_fft, n_mels).to(y.device)
        a = fb @ _stft_mag(y, n_fft, n_fft // 4) ** 2
        b = fb @ _stft_mag(x, n_fft, n_fft // 4) ** 2
        loss = loss + ((a + 1e-5).log10() - (b + 1e-5).log10()).abs().mean()
    return loss / 4


class STFTDiscriminator(nn.Module):
    """One scale of a multi-scale complex-STFT discriminator (2-D convolutions)."""

    def __init__(self, n_fft: int, ch: int = 32):
        super().__init__()
        self.n_fft = n_fft
        wn = nn.utils.parametrizations.weight_norm
        self.convs = nn.ModuleList([
            wn(nn.Conv2d(2, ch, (3, 9), padding=(1, 4))),
            wn(nn.Conv2d(ch, ch, (3, 9), stride=(1, 2), padding=(1, 4))),
            wn(nn.Conv2d(ch, ch, (3, 9), stride=(1, 2), padding=(1, 4))),
            wn(nn.Conv2d(ch, ch, (3, 9), stride=(1, 2), padding=(1, 4))),
            wn(nn.Conv2d(ch, ch, (3, 3), padding=(1, 1))),
        ])
        self.out = wn(nn.Conv2d(ch, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        w = torch.hann_window(self.n_fft, device=x.device)
        s = torch.stft(x, self.n_fft, self.n_fft // 4, window=w, return_complex=True)
        h = torch.stack([s.real, s.imag], 1).transpose(2, 3)  # (B, 2, T, F)
        feats = []
        for c in self.convs:
            h = F.leaky_relu(c(h), 0.2)
            feats.append(h)
        return self.out(h), feats


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, scales: tuple[int, ...] = (512, 1024, 2048)):
        super().__init__()
        self.discs = nn.ModuleList(STFTDiscriminator(n) for n in scales)

    def forward(self, x: torch.Tensor):
        return [d(x) for d in self.discs]


def discriminator_loss(real, fake) -> torch.Tensor:
    loss = real[0][0].new_zeros(())
    for (lr, _), (lf, _) in zip(real, fake):
        loss = loss + F.relu(1 - lr).mean() + F.relu(1 + lf).mean()
    return loss / len(real)


def generator_losses(real, fake) -> tuple[torch.Tensor, torch.Tensor]:
    """(hinge adversarial loss, feature-matching loss)."""
    adv = fake[0][0].new_zeros(())
    fm = fake[0][0].new_zeros(())
    for (_, fr), (lf, ff) in zip(real, fake):
        adv = adv + F.relu(1 - lf).mean()
        for a, b in zip(fr, ff):
            fm = fm + (a.detach() - b).abs().mean() / (a.detach().abs().mean() + 1e-5)
    return adv / len(fake), fm / (len(fake) * len(fake[0][1]))
