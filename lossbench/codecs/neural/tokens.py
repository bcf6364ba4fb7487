"""The backbone's tokens of the training audio, cached per codec weights, and the weights' hash.

Shared by the trainers that learn on a frozen backbone's tokens or latents
(``lossbench train soundspring``, ``lossbench train glaris``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.errors import ConfigError
from lossbench.files import file_hash


def tokenize(data: Path, split: str, weights: Path | None = None, max_hours: float | None = None,
             backbone: str = DEFAULT_BACKBONE) -> np.ndarray:
    """``split`` audio as RVQ tokens (frames, N_q) int16, cached per codec weights.

    With ``max_hours``, a seeded random subset of the files of about that
    duration (files in a fixed shuffled order until the budget is spent).
    """
    import soundfile as sf

    from lossbench.codecs.neural import load_model, weights_path

    w = weights_path(weights, backbone)
    h = file_hash(w)
    cache = data / (f"tokens_{split}_{h}.npy" if max_hours is None else f"tokens_{split}_{h}_{max_hours:g}h.npy")
    if cache.exists():
        return np.load(cache)
    man = data / "manifest.jsonl"
    if not man.exists():
        raise ConfigError(f"{man} does not exist; build the data with 'lossbench data prepare-speech {data}' (make data)")
    model = load_model(str(w) if weights else None, backbone)
    ents = [e for e in map(json.loads, man.read_text().splitlines()) if e["split"] == split]
    if max_hours is not None:
        order = np.random.default_rng(1234).permutation(len(ents))
        picked, total = [], 0.0
        for i in order:
            if total >= max_hours * 3600:
                break
            picked.append(ents[i])
            total += float(ents[i]["duration_s"])
        ents = picked
    out = []
    with torch.no_grad():
        for e in ents:
            x = sf.read(data / e["file"], dtype="float32")[0]
            n = len(x) // 320 * 320
            if n < 320:
                continue
            out.append(model.encode(torch.from_numpy(x[:n]).view(1, 1, -1))[0].T.numpy().astype(np.int16))
    toks = np.concatenate(out)
    np.save(cache, toks)
    return toks


def codec_sha(weights: Path | None = None, backbone: str = DEFAULT_BACKBONE) -> str:
    """The hash of the codec weights a token cache or a trained model belongs to."""
    from lossbench.codecs.neural import weights_path

    return file_hash(weights_path(weights, backbone))


def token_layers(backbone: str = DEFAULT_BACKBONE) -> int:
    """How many leading token layers are not part of the latent Glaris codes (fargan: the two pitch layers,
    which travel losslessly beside the side information)."""
    from lossbench.codecs.neural.backbones import backbone_class

    return backbone_class(backbone).pitch_layers
