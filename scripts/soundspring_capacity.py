"""SoundSpring's compression limit, capacity apart (issue #35): the shipped MLM (3 blocks, width 128) against a
larger one trained the same way on the same tokens (4 blocks, width 192, ``checkpoints/soundspring_fargan_w192``),
both at the same training step, coding the same held-out fine tokens under the shipped coder's context (the
window's coarse tokens), and the context-free frequencies beside them; each model's coder pass timed (RTF, one
thread, both ends: encoder and decoder run the same pass).

Run: python scripts/soundspring_capacity.py [--ckpt checkpoints/soundspring_fargan_w192/ckpt.pt] [--frames 8000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from safetensors import safe_open

    from lossbench.codecs.neural.tokens import tokenize
    from lossbench.codecs.soundspring.limits import context_bits, rtf_passes, sample_chunks, unigram_bits
    from lossbench.codecs.soundspring.train import export_mlm
    from lossbench.codecs.soundspring.weights import load_mlm, mlm_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="checkpoints/soundspring_fargan_w192/ckpt.pt")
    ap.add_argument("--data", default="data/speech")
    ap.add_argument("--frames", type=int, default=8000)
    a = ap.parse_args()
    st = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    with tempfile.TemporaryDirectory() as tmp:
        big_path = export_mlm(Path(a.ckpt), Path(tmp) / "mlm_w192.safetensors")
        models = {"shipped (3 x 128)": load_mlm(None, "fargan"), "larger (4 x 192)": load_mlm(str(big_path), "fargan")}
        steps = {}
        for name, path in (("shipped (3 x 128)", mlm_path(None, "fargan")), ("larger (4 x 192)", big_path)):
            with safe_open(str(path), "pt") as f:
                steps[name] = (f.metadata() or {}).get("step", "?")
    train = tokenize(Path(a.data), "train", max_hours=3.0, backbone="fargan")
    valid = tokenize(Path(a.data), "valid", backbone="fargan")
    held, tr = sample_chunks(valid, a.frames), sample_chunks(train, a.frames, seed=1)
    nc = 3
    groups = {"4-6": slice(0, 3), "7-12": slice(3, 9), "13-24": slice(9, 21), "4-24": slice(0, 21)}
    print(f"held-out frames: {a.frames}; larger model's training step: {st['step']}")
    uni = unigram_bits(train, held.reshape(-1, held.shape[2]), nc)
    print("| model | params (M) | step | " + " | ".join(f"layers {g} held-out" for g in groups)
          + " | 4-24 on training tokens | coder RTF per end / dual (1 thread) |")
    print("|---|---|---|" + "---|" * (len(groups) + 2))
    print("| frequencies (no context) | 0 | - | " + " | ".join(f"{uni[s].mean():.3f}" for s in groups.values())
          + f" | {unigram_bits(train, tr.reshape(-1, tr.shape[2]), nc).mean():.3f} | 0 / 0 |")
    for name, m in models.items():
        params = sum(p.numel() for p in m.parameters()) / 1e6
        b = context_bits(m, held, "coarse")
        bt = context_bits(m, tr, "coarse")
        rtf = rtf_passes(m, 5) / 0.06  # the shipped 5-frame window, a pass per 60 ms block
        print(f"| {name} | {params:.2f} | {steps[name]} | "
              + " | ".join(f"{b[s].mean():.3f}" for s in groups.values())
              + f" | {bt.mean():.3f} | {rtf:.3f} / {2 * rtf:.3f} |")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
