"""Where Glaris's lossless quality is lost: the transform's own error, measured apart from quantisation.

On held-out latents (the valid split's token cache, first 20,000 frames; the fargan backbone's RVQ part, the
latent Glaris codes), relative MSE (error power / latent variance) of:
- the rvq baseline at K layers (the first K - 2 RVQ layers past the pitch tokens);
- Glaris's g_s(g_a(l)) without quantisation (the transform's capacity), and with y quantised at rate index q,
  with the fraction of symbols the coder's range clips.

With ``--train``, the same on 20,000 frames of the training split's cache instead: a train/held-out gap would
say the data limit it; equal errors say the model's capacity does.

Run: python docs/sweeps/glaris_capacity.py [--train] [glaris safetensors]   (after make data)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from lossbench.codecs.glaris.weights import load_glaris
from lossbench.codecs.glaris.train import codebooks, latents_of
from lossbench.codecs.neural.tokens import codec_sha

torch.set_num_threads(2)
args = [a for a in sys.argv[1:] if a != "--train"]
split = "train_" if "--train" in sys.argv else "valid_"
m = load_glaris(args[0] if args else None, "fargan")
cbs = codebooks("fargan")
sha = codec_sha(backbone="fargan")
cache = Path("data/speech") / (f"tokens_train_{sha}_3h.npy" if split == "train_" else f"tokens_valid_{sha}.npy")
v = np.load(cache).astype(np.int64)[:20000, 2:]
print(f"{cache.name}: 20,000 frames")
lat = latents_of(v, cbs)
var = float(((lat - lat.mean(0)) ** 2).mean())
for K in (8, 12, 14, 18):
    print(f"rvq K={K}: relative MSE {float(((latents_of(v[:, : K - 2], cbs) - lat) ** 2).mean()) / var:.4f}")
L = (lat / m.cfg.latent_scale).T[None].float()
with torch.no_grad():
    for q in (0, 16, 32, 48, 63):
        qt = torch.tensor([q])
        y = m.analysis(L, qt)
        unq = m.synthesis(y, qt) * m.cfg.latent_scale
        rec = m.synthesis(m.dequantize(m.quantize(y, qt), qt), qt) * m.cfg.latent_scale
        clip = float((torch.abs(y * m.gain(qt)) > m.cfg.y_range).float().mean())
        e_u = float(((unq[0].T - lat) ** 2).mean()) / var
        e_q = float(((rec[0].T - lat) ** 2).mean()) / var
        print(f"glaris q={q}: relative MSE unquantised {e_u:.4f}, quantised {e_q:.4f}, clipped symbols {clip:.4%}")
