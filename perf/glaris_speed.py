"""Speed of the Glaris-style transceiver on one CPU thread, in multiples of real time.

Sender: backbone encoder + RVQ + g_a + h_a + RVQ(z) + h_s + entropy model +
range coding of y. Receiver: parsing, h_s, entropy decoding, side-info PLC
at 20 % Bernoulli loss, g_s, backbone decoder. Both run on the whole clip
at once (every module is causal, so the computation is the streaming one,
batched over frames; per-call overhead of frame-by-frame operation is not
included: see perf/neural_speed.py for the backbone's streaming cost).
The reference measured in the same run is the bare backbone (rvq K=24
encode + decode) on the same clip; the issue's target is >= 5x real time.

Run: ``python perf/glaris_speed.py [--glaris-weights PATH]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import best_of

from lossbench.codecs import make_codec
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--glaris-weights", default=None)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = np.concatenate([r.load(16000).samples for r in default_corpus()[:3]])[: int(args.seconds * 16000)]
    clip = Clip("perf", x.astype(np.float32), 16000)
    dur = clip.duration_s
    extra = f",glaris_weights={args.glaris_weights}" if args.glaris_weights else ""
    rvq = make_codec("rvq:layers=24")
    s_r = rvq.encode(clip)
    t_ref = best_of(lambda: rvq.encode(clip)) + best_of(lambda: rvq.decode(s_r).audio)
    print(f"reference: rvq K=24 encode + decode {dur / t_ref:6.1f} x RT ({dur:.0f} s clip, one thread)")
    for spec in ("glaris:q=32,side=2,offsets=1/13", "glaris:q=0,side=4,offsets=1/13", "glaris:q=63,side=1,offsets=none"):
        cod = make_codec(spec + extra)
        s = cod.encode(clip)
        lost = np.random.default_rng(0).random(s.num_packets) < 0.2
        rec = Reception.from_lost(lost)
        te = best_of(lambda: cod.encode(clip))
        td = best_of(lambda: cod.decode(s, rec, "side-info-plc").audio)
        td0 = best_of(lambda: cod.decode(s, None, "side-info-plc").audio)
        print(f"{spec:34s} {s.payload_kbps:5.2f} kbit/s | encode {dur / te:6.1f} x RT, decode+PLC (20 % loss) "
              f"{dur / td:6.1f} x RT, lossless decode {dur / td0:6.1f} x RT | both {dur / (te + td):5.1f} x RT "
              f"= {t_ref / (te + td):4.2f} x the backbone's speed")


if __name__ == "__main__":
    main()
