"""Residual vector quantisation with EMA codebooks (the bare algorithm).

::

    r_0 = x;  for l in 1..L:  c_l = argmin_k |r_{l-1} - e_{l,k}|,  q_l = e_{l,c_l},  r_l = r_{l-1} - q_l
    x_hat = sum_{l <= K} q_l   (any first K layers decode)

Training: codebooks follow an exponential moving average of the vectors
assigned to them (no gradient), codes that fall out of use are re-seeded
from the current batch's residuals, the encoder is pulled toward its
quantisation by a commitment loss, and gradients pass the quantiser by the
straight-through estimator. Quantiser dropout: each example uses only its
first K layers, K drawn per example.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn


class EMACodebook(nn.Module):
    embed: torch.Tensor  # buffers (register_buffer), typed for mypy
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    initted: torch.Tensor

    def __init__(self, size: int, dim: int, decay: float = 0.99, eps: float = 1e-5, dead_threshold: float = 1.0):
        super().__init__()
        self.decay, self.eps, self.dead_threshold = decay, eps, dead_threshold
        self.register_buffer("embed", torch.randn(size, dim) * 0.01)
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("embed_sum", self.embed.clone())
        self.register_buffer("initted", torch.zeros((), dtype=torch.bool))
        self._norms: tuple[tuple[int, int], torch.Tensor] | None = None  # ((data_ptr, version), |e_k|^2)

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Indices of the nearest codes, x: (N, D) -> (N,).

        argmin_k |x - e_k|^2 = argmin_k (|e_k|^2 - 2 x.e_k): the |x|^2 term is
        dropped, and outside training the code norms are cached (a streaming
        encoder quantises a few frames per call, where recomputing them for
        1024 codes cost more than the search itself).
        """
        e = self.embed
        key = (e.data_ptr(), e._version)
        cache = self._norms
        if self.training or cache is None or cache[0] != key:
            cache = (key, (e * e).sum(1))
            if not self.training:
                self._norms = cache  # replaced whole: threads sharing the module never see a mismatched pair
        return torch.addmm(cache[1][None], x, e.t(), alpha=-2).argmin(1)

    @torch.no_grad()
    def update(self, x: torch.Tensor, codes: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """EMA update from the vectors ``x`` (N, D) assigned to ``codes``; re-seed dead codes."""
        if x.shape[0] == 0:
            return
        size = self.embed.shape[0]
        if not bool(self.initted):
            idx = torch.randint(0, x.shape[0], (size,), generator=generator, device=x.device)
            self.embed.copy_(x[idx])
            self.embed_sum.copy_(x[idx])
            self.cluster_size.fill_(1.0)
            self.initted.fill_(True)
            return
        counts = torch.bincount(codes, minlength=size).to(x.dtype)
        sums = torch.zeros(size, x.shape[1], device=x.device, dtype=x.dtype).index_add_(0, codes, x)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        size_smoothed = (self.cluster_size + self.eps) / (n + size * self.eps) * n
        self.embed.copy_(self.embed_sum / size_smoothed[:, None])
        dead = self.cluster_size < self.dead_threshold
        n_dead = int(dead.sum())
        if n_dead:
            idx = torch.randint(0, x.shape[0], (n_dead,), generator=generator, device=x.device)
            self.embed[dead] = x[idx]
            self.embed_sum[dead] = x[idx]
            self.cluster_size[dead] = 1.0


class ResidualVQ(nn.Module):
    """L EMA codebooks of ``size`` entries over ``dim``-dimensional frames."""

    def __init__(self, num_layers: int = 24, size: int = 1024, dim: int = 128, decay: float = 0.99):
        super().__init__()
        self.num_layers, self.size, self.dim = num_layers, size, dim
        self.layers = nn.ModuleList(EMACodebook(size, dim, decay) for _ in range(num_layers))

    @property
    def codebooks(self) -> list[EMACodebook]:
        """The layers' codebooks, in order (``self.layers`` typed)."""
        return [cast(EMACodebook, m) for m in self.layers]

    def encode(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Codes of the first k layers: x (B, D, T) -> (B, k, T) int64."""
        k = self.num_layers if k is None else k
        B, D, T = x.shape
        r = x.permute(0, 2, 1).reshape(-1, D).contiguous()
        out = []
        for layer in self.codebooks[:k]:
            c = layer.nearest(r)
            r = r - layer.embed[c]
            out.append(c.view(B, T))
        return torch.stack(out, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the code vectors: codes (B, k, T) -> (B, D, T)."""
        B, k, T = codes.shape
        acc = torch.zeros(B, T, self.dim, device=codes.device)
        for q in range(k):
            acc = acc + self.codebooks[q].embed[codes[:, q]]
        return acc.permute(0, 2, 1)

    def forward(
        self, x: torch.Tensor, n_layers: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass with per-example layer counts.

        Args:
            x: (B, D, T) latents.
            n_layers: (B,) number of layers each example uses.
        Returns:
            (quantised latents with straight-through gradients, commitment loss).
        """
        B, D, T = x.shape
        r = x.permute(0, 2, 1).reshape(-1, D)
        active_rows = n_layers.repeat_interleave(T)  # (B*T,)
        q_sum = torch.zeros_like(r)
        commit = x.new_zeros(())
        for i, layer in enumerate(self.codebooks):
            idx = torch.nonzero(active_rows > i).squeeze(1)  # only the rows that use this layer
            if idx.numel() == 0:
                break
            ra = r[idx]
            rd = ra.detach()
            c = layer.nearest(rd)
            if self.training:
                layer.update(rd, c, generator)
            q = layer.embed[c]
            commit = commit + ((ra - q.detach()) ** 2).sum() / (idx.numel() * D)
            q_sum = q_sum.index_add(0, idx, q)
            r = r.index_add(0, idx, -q)
        # straight-through: the gradient reaches x only for rows that were quantised (an example
        # with no layers decodes from zeros, so its latent must get no gradient from the decoder)
        xq = x.permute(0, 2, 1).reshape(-1, D) * (active_rows > 0)[:, None].to(x.dtype)
        out = xq + (q_sum - xq).detach()
        return out.view(B, T, D).permute(0, 2, 1), commit / self.num_layers
