"""A context-free entropy model for SoundSpring's fine tokens: each layer's token frequencies (``entropy=freq``).

Measured on held-out speech (``lossbench train soundspring-card``, *Where the saving stops*), the fargan backbone's
fine tokens cost fewer bits under their layers' frequencies counted on the training tokens than under the masked
LM's PMFs, whatever context the MLM is given: the tokens' only redundancy a model finds is in how unevenly each
codebook is used. This model codes under those frequencies. It needs no Transformer pass, and a fine token
decodes without the coarse tokens the MLM's PMFs are conditioned on: a lost coarse packet no longer invalidates
the fine tokens of the blocks whose windows held it.

The table is a safetensors file of counts (layers x vocabulary) with the codec weights' hash, made by
``lossbench train soundspring-freq`` from the training tokens; both ends compute the same PMFs from it (add-1/2).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.concurrency import locked_cache
from lossbench.errors import ConfigError

ENTROPY_MODELS = ("mlm", "freq")


class TokenFrequencies:
    """Per-layer token PMFs (Q, V) from counts; stands in for the MLM where the coder asks for fine PMFs."""

    #: the coder needs no condition tokens for PMFs from this model
    context_free = True

    def __init__(self, counts: np.ndarray, codec_sha: str = "") -> None:
        c = np.asarray(counts, dtype=np.float64)
        if c.ndim != 2 or (c < 0).any():
            raise ConfigError(f"token counts must be a non-negative (layers, vocabulary) table, got shape {c.shape}")
        c = c + 0.5
        self.pmf = c / c.sum(1, keepdims=True)
        self.codec_sha = codec_sha

    def probs(self, n: int, layers: np.ndarray) -> np.ndarray:
        """PMFs (n frames, len(layers), V): every frame's the same."""
        return np.broadcast_to(self.pmf[np.asarray(layers)][None], (n, len(layers), self.pmf.shape[1]))


def count_tokens(tokens: np.ndarray, vocab: int = 1024) -> np.ndarray:
    """Counts (layers, vocab) int64 of a token array (frames, layers)."""
    t = np.asarray(tokens, dtype=np.int64)
    return np.stack([np.bincount(t[:, k], minlength=vocab)[:vocab] for k in range(t.shape[1])])


def save_frequencies(counts: np.ndarray, dest: Path, backbone: str, codec_sha: str, source: str) -> Path:
    import torch
    from safetensors.torch import save_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    meta = {"backbone": backbone, "codec_sha": codec_sha, "frames": str(int(counts[0].sum())), "source": source,
            "made": time.strftime("%Y-%m-%d", time.gmtime()), "model_cfg": json.dumps({"shape": list(counts.shape)})}
    save_file({"counts": torch.from_numpy(np.asarray(counts, dtype=np.int32))}, str(dest), metadata=meta)
    return dest


@locked_cache(4)
def load_frequencies(path: str | None = None, backbone: str = DEFAULT_BACKBONE) -> TokenFrequencies:
    """The token-frequency table of ``backbone``'s tokens (shipped, or ``path``); one of another backbone, or of
    other codec weights than the shipped ones, is refused."""
    from lossbench.codecs.neural.backbones import backbone_class, read_weights
    from lossbench.codecs.neural.tokens import codec_sha

    cls = backbone_class(backbone)
    p = cls.shipped_path("token_freq", path)
    meta, tensors = read_weights(p, "token-frequency", f"lossbench train soundspring-freq --backbone {cls.name}")
    cls.check_meta(meta, p, "token frequencies", "freq_weights", "tokens")
    sha = meta.get("codec_sha", "")
    if not path and sha and sha != codec_sha(None, cls.name):
        raise ConfigError(f"{p} counts the tokens of codec weights {sha}, not the shipped {codec_sha(None, cls.name)}; "
                          f"remake it with 'lossbench train soundspring-freq --backbone {cls.name}'")
    return TokenFrequencies(tensors["counts"].numpy(), sha)


__all__ = ["ENTROPY_MODELS", "TokenFrequencies", "count_tokens", "load_frequencies", "save_frequencies"]
