"""Cost of each metric per second of audio, and fast PLCMOS against speechmos's, timed in the same run.

Prints, on one corpus clip (16 kHz; the estimate is the clip with 10 % of its 20 ms frames silenced), the
best-of-3 wall time of every metric of the metric table divided by the clip's duration, then the ratio
of speechmos's ``plcmos.run`` (the whole ONNX model once per rater embedding, 15 per clip) to lossbench's
PLCMOS (the audio branch once, the head for all 15 embeddings), which score equal values.
Single-threaded numeric libraries, as in the sweep's workers.

Run: ``python perf/metrics_speed.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # what every worker runs with (set before onnxruntime loads)

import numpy as np  # noqa: E402

from common import best_of  # noqa: E402
from lossbench.corpus import default_corpus  # noqa: E402
from lossbench.metrics import METRIC_TABLE, compute_metrics  # noqa: E402
from lossbench.metrics.learned import plcmos, plcmos_speechmos  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    clip = default_corpus()[0].load(16000)
    ref = clip.samples.astype(np.float32)
    est = ref.copy()
    rng = np.random.default_rng(0)
    for i in np.flatnonzero(rng.random(ref.size // 320) < 0.1):
        est[i * 320 : (i + 1) * 320] = 0.0
    dur = clip.duration_s
    from lossbench.metrics.visqol import numba_accelerated

    print(f"clip {clip.id}: {dur:.2f} s at 16 kHz, one thread; ViSQOL's numba path: {numba_accelerated()}")
    print(f"{'metric':<12} {'s per s of audio':>18}")
    from lossbench.metrics import asr

    def run(name: str) -> None:
        asr._CACHE.clear()  # the transcripts are cached per signal: time the recogniser, not the cache
        compute_metrics(est, ref, 16000, [name], None, {"language": "en"})

    for name in METRIC_TABLE:
        run(name)  # load models and helpers first
        t = best_of(lambda: run(name))
        print(f"{name:<12} {t / dur:>18.4f}")
    a = plcmos(est, ref, 16000)["plcmos"]
    b = plcmos_speechmos(est)
    t_fast = best_of(lambda: plcmos(est, ref, 16000))
    t_ref = best_of(lambda: plcmos_speechmos(est))
    print(f"PLCMOS: lossbench {t_fast / dur:.4f} s/s, speechmos {t_ref / dur:.4f} s/s: x{t_ref / t_fast:.1f} faster "
          f"(scores {a:.6f} and {b:.6f}, |diff| {abs(a - b):.1e}; target x5)")


if __name__ == "__main__":
    main()
