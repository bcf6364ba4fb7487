"""Speed of the neural RVQ codec on one CPU thread, in multiples of real time.

Offline (whole clip) and streaming (frame by frame, with the explicit-state
API) encode and decode, against the same clip's duration; the issue's target
is encode + decode at least 5x faster than real time on one core.

Run: ``python perf/neural_speed.py``.
"""

from __future__ import annotations


import numpy as np
from common import best_of
import torch

from lossbench.codecs.neural import load_model
from lossbench.codecs.neural.model import StreamingCodec
from lossbench.corpus import default_corpus




def main() -> None:
    torch.set_num_threads(1)
    m = load_model()
    x = np.concatenate([r.load(16000).samples for r in default_corpus()[:2]])[: 10 * 16000]
    dur = x.size / 16000
    t = torch.from_numpy(x.copy()).view(1, 1, -1)
    with torch.no_grad():
        for k in (3, 12, 24):
            codes = m.encode(t, k)
            te = best_of(lambda: m.encode(t, k))
            td = best_of(lambda: m.decode_codes(codes))
            print(f"offline   K={k:2d}: encode {dur / te:6.1f} x RT, decode {dur / td:6.1f} x RT, "
                  f"both {dur / (te + td):6.1f} x RT")
    s = StreamingCodec(m)
    frames = t[0, 0].reshape(-1, 320)

    def stream():
        es = ds = None
        for f in frames:
            z, es = s.encode_frame(f, es)
            q = m.quantizer.decode(m.quantizer.encode(z.view(1, -1, 1), 12))[0, :, 0]
            _, ds = s.decode_frame(q, ds)

    ts = best_of(stream, 1)
    print(f"streaming K=12 (20 ms frames, encode + quantise + decode): {dur / ts:6.1f} x RT, "
          f"{1e3 * ts / frames.shape[0]:.2f} ms per frame")


if __name__ == "__main__":
    main()
