"""Codec, concealment and metric speed on a 10 s speech clip, one core.

Speeds are multiples of real time (clip duration / wall time) — a ratio
against the clip itself — and every cost is also printed relative to a
reference measured in the same run: a NumPy rfft over the clip in 20 ms
frames (``ref``), so numbers from noisy machines stay comparable.

Run: ``python perf/codecs_speed.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

import numpy as np
from common import best_of

from lossbench.metrics import METRIC_TABLE, compute_metrics
from lossbench.codecs import make_codec
from lossbench.concealment import CONCEALMENTS
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus
from lossbench.netsim import Bernoulli




def main() -> None:
    refs = default_corpus()
    x = np.concatenate([r.load(16000).samples for r in refs[:2]])[: 10 * 16000]
    clip = Clip("perf10s", x, 16000)
    dur = clip.duration_s
    t_ref = best_of(lambda: np.fft.rfft(x.reshape(-1, 320), axis=1), 10)
    print(f"clip {dur:.1f} s; reference (rfft of 20 ms frames) {1e3 * t_ref:.2f} ms\n")
    print(f"{'codec':36s} {'encode xRT':>10s} {'decode xRT':>10s} {'enc/ref':>8s} {'dec/ref':>8s}")
    specs = ["pcm", "opus:bitrate=9000", "opus:bitrate=24000,fec=1", "opus:bitrate=64000,sample_rate_hz=48000",
             "amrwb:mode=2", "amrwb:mode=8",
             # the production codecs (docs/codecs.md), each decoded with its own concealment
             "amrnb:kbps=12.2", "amrnb:kbps=4.75", "lc3:bitrate=32000", "lc3:bitrate=32000,frame_ms=7.5",
             "lc3:bitrate=96000,sample_rate_hz=48000", "speex:mode=nb", "speex:mode=wb", "speex:mode=uwb",
             "g711:law=alaw", "g722", "gsm", "codec2:mode=3200", "codec2:mode=1300", "codec2:mode=700C"]
    try:
        make_codec("rvq:layers=12")
        specs.append("rvq:layers=12")
    except Exception as exc:  # weights not shipped yet
        print(f"(rvq skipped: {exc})")
    for spec in specs:
        cod = make_codec(spec)
        c = clip
        if cod.sample_rate_hz != 16000:
            from lossbench.audio import resample

            c = Clip(clip.id, resample(x, 16000, cod.sample_rate_hz), cod.sample_rate_hz)
        s = cod.encode(c)
        te = best_of(lambda: cod.encode(c))
        conc = cod.native_concealments[0] if cod.native_concealments else "zeros"
        td = best_of(lambda: cod.decode(s, None, conc).audio)
        print(f"{spec:36s} {dur / te:10.0f} {dur / td:10.0f} {te / t_ref:8.0f} {td / t_ref:8.0f}")

    print("\nOpus 1.5.2 decoder settings, 16 kbit/s (24 kbit/s with DRED), clean and at 20 % Bernoulli loss;")
    print("ratios are against classic decoding (opus-plc) of the same stream in this run:")
    print(f"  {'setting':44s} {'enc xRT':>8s} {'clean xRT':>10s} {'lossy xRT':>10s} {'clean/classic':>14s} {'lossy/classic':>14s}")
    settings = [
        ("classic PLC", "opus:bitrate=16000", "opus-plc"),
        ("deep PLC", "opus:bitrate=16000", "opus-deep-plc"),
        ("LACE + deep PLC", "opus:bitrate=16000,osce=lace", "opus-deep-plc"),
        ("NoLACE + deep PLC", "opus:bitrate=16000,osce=nolace", "opus-deep-plc"),
        ("LBRR (classic PLC)", "opus:bitrate=16000,fec=1,loss_perc=20", "opus-fec"),
        ("DRED 500 ms at 24 kbit/s", "opus:bitrate=24000,dred_ms=500,loss_perc=20", "opus-dred"),
        ("DRED 1 s at 24 kbit/s", "opus:bitrate=24000,dred_ms=1000,loss_perc=20", "opus-dred"),
    ]
    classic: dict[str, tuple[float, float]] = {}
    for label, spec, conc in settings:
        cod = make_codec(spec)
        s = cod.encode(clip)
        rec = Reception.from_lost(Bernoulli(0.2).sample(s.num_packets, np.random.default_rng(0)).lost)
        te = best_of(lambda: cod.encode(clip), 2)
        tc = best_of(lambda: cod.decode(s, None, conc).audio, 2)
        tl = best_of(lambda: cod.decode(s, rec, conc).audio, 2)
        key = spec.split(",")[0]
        if key not in classic:  # classic decoding of this bitrate's plain stream, same run
            plain = make_codec(key)
            ps = plain.encode(clip)
            prec = Reception.from_lost(Bernoulli(0.2).sample(ps.num_packets, np.random.default_rng(0)).lost)
            classic[key] = (best_of(lambda: plain.decode(ps, None, "opus-plc").audio, 2),
                            best_of(lambda: plain.decode(ps, prec, "opus-plc").audio, 2))
        c0, l0 = classic[key]
        print(f"  {label:44s} {dur / te:8.0f} {dur / tc:10.0f} {dur / tl:10.0f} {tc / c0:14.2f} {tl / l0:14.2f}")

    print("\nconcealment cost at 20 % Bernoulli loss (decode + conceal, Opus 16 kbps / RVQ where native):")
    cod = make_codec("opus:bitrate=16000,fec=1")
    s = cod.encode(clip)
    rec = Reception.from_lost(Bernoulli(0.2).sample(s.num_packets, np.random.default_rng(0)).lost)
    base = best_of(lambda: cod.decode(s, rec, "zeros").audio)
    for name in list(cod.native_concealments) + CONCEALMENTS.names():
        t = best_of(lambda: cod.decode(s, rec, name).audio)
        print(f"  {name:24s} {1e3 * t:8.1f} ms per 10 s  (+{1e3 * (t - base):7.1f} ms over zeros; {t / t_ref:6.0f} x ref)")

    print("\nmetric time per 10 s clip:")
    y = cod.decode(s, rec, "opus-plc").audio
    for m in METRIC_TABLE:
        compute_metrics(y, x, 16000, [m])
        t = best_of(lambda: compute_metrics(y, x, 16000, [m]), 2)
        print(f"  {m:12s} {1e3 * t:8.1f} ms  ({t / t_ref:6.0f} x ref)")


if __name__ == "__main__":
    main()
