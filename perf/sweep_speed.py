"""Speed and memory of the sweep harness.

Prints, for the two sweep shapes of issue #33 (many cheap tasks of one clip; a realistic small sweep), the
wall time on 1 and 2 workers and the scaling ratio; then, for one small sweep on the embedded corpus:

- tasks per second with 1 and 2 workers, and the scaling ratio;
- the share of task time per stage (encode, channel, decode, metrics);
- the harness overhead: wall time of ``run_job`` against calling the same
  pieces (encode, transmit, decode, metrics) directly, in the same process;
- peak resident memory per worker for sweeps over 10 and 100 clips
  (the 100-clip corpus repeats the embedded clips under new names), which
  must stay flat: clips are read when needed and audio is dropped once scored.

Run: ``python perf/sweep_speed.py`` (``--no-memory`` skips the 10- and 100-clip memory sweeps; ``--scaling-only``\nstops after the two scaling shapes of issue #33).
"""

from __future__ import annotations

import json
import resource
import sys
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from lossbench.benchmarks.plan import channel_rng, plan_sweep
from lossbench.benchmarks.run import run_job
from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep

SPEC = {
    "metrics": ["pesq_wb", "stoi", "si_snr", "plcmos"],
    "concealments": ["native", "waveform-substitution"],
    "codec": [{"spec": "opus:bitrate=16000"}, {"spec": "amrwb:mode=2"}],
    "channel": [{"model": "bernoulli", "loss": [0.0, 0.1, 0.2]}, {"model": "markov3"}],
    "examples": 0,
}


def timed_sweep(tmp: Path, workers: int, clips: int, corpus: str | None = None) -> tuple[float, int, pd.DataFrame]:
    d = tmp / f"w{workers}_c{clips}"
    spec = spec_from_dict({**SPEC, "clips": clips, "workers": workers, **({"corpus": corpus} if corpus else {})})
    t = time.perf_counter()
    res = run_sweep(spec, d, progress=False)
    wall = time.perf_counter() - t
    return wall, res.ran, pd.read_parquet(d / "results.parquet")


#: the two shapes of issue #33: many cheap tasks of one clip, and a realistic small sweep
CHEAP = {"clips": 1, "metrics": ["si_snr"], "concealments": ["zeros"], "codec": [{"spec": "pcm"}],
         "channel": [{"model": "bernoulli", "loss": [0.02, 0.05, 0.1, 0.2, 0.3]}], "seeds": 600, "examples": 0}
REALISTIC = {"clips": 6, "metrics": ["pesq_wb", "stoi", "plcmos"], "concealments": ["native"],
             "codec": [{"spec": "opus:bitrate=16000", "concealments": ["opus-plc"]},
                       {"spec": "amrwb", "concealments": ["amrwb-bfi"]}],
             "channel": [{"model": "bernoulli", "loss": [0.05, 0.1, 0.2]}], "seeds": 2, "examples": 0}


def scaling(tmp: Path, name: str, d: dict) -> None:
    """Wall time of the sweep ``d`` on 1 and on 2 local workers, timed in this run, and the ratio."""
    walls = {}
    for w in (1, 2):
        spec = spec_from_dict({**d, "workers": w})
        t = time.perf_counter()
        res = run_sweep(spec, tmp / f"{name}_{w}", progress=False)
        walls[w] = time.perf_counter() - t
        assert res.errors == 0
    print(f"{name}: {res.tasks} tasks, 1 worker {walls[1]:.1f} s, 2 workers {walls[2]:.1f} s, "
          f"scaling x{walls[1] / walls[2]:.2f}")


def direct_time(tmp: Path) -> tuple[float, float]:
    """(run_job time, direct pieces time) for the same job, in-process."""
    from lossbench.metrics import compute_metrics
    from lossbench.codecs import make_codec

    spec = spec_from_dict({**SPEC, "clips": 1})
    job = plan_sweep(spec, tmp / "direct").jobs[0]
    run_job(job)  # warm caches (codec objects, imports, PESQ helper)
    t = time.perf_counter()
    run_job(job)
    t_job = time.perf_counter() - t
    cod = make_codec(job.codec_spec)
    t = time.perf_counter()
    clip = job.clip.load(16000)
    s = cod.encode(clip)
    for ch in job.channels:
        rec = ch.build().transmit(s, channel_rng(0, ch.rng_key, clip.id, 0))
        for c in job.concealments:
            y = cod.decode(s, rec, c).audio
            compute_metrics(y, clip.samples, 16000, job.metrics)
    return t_job, time.perf_counter() - t


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        scaling(tmp, "cheap (1 clip, pcm, 5 rates x 600 seeds, SI-SNR)", CHEAP)
        scaling(tmp, "realistic (6 clips, Opus + AMR-WB, 3 rates x 2 seeds, PESQ-WB + STOI + PLCMOS)", REALISTIC)
        if "--scaling-only" in sys.argv:
            return
        w1, n1, df = timed_sweep(tmp, 1, 4)
        w2, n2, _ = timed_sweep(tmp, 2, 4)
        print(f"tasks/s: 1 worker {n1 / w1:.2f}, 2 workers {n2 / w2:.2f}, scaling x{(n2 / w2) / (n1 / w1):.2f}")
        stage = {
            "encode": (df["encode_rtf"] * df["duration_s"]).sum() / df.groupby("channel_key").ngroups,
            "channel": df["channel_time_s"].sum() / df["concealment"].nunique(),
            "decode": (df["decode_rtf"] * df["duration_s"]).sum(),
        }
        per_metric = pd.DataFrame([m for m in df["metric_times"] if m is not None]).sum()
        stage |= {f"metric {k}": float(v) for k, v in per_metric.items()}
        tot = sum(stage.values())
        print("time share per stage: " + ", ".join(f"{k} {100 * v / tot:.1f} %" for k, v in stage.items()))
        t_job, t_direct = direct_time(tmp)
        print(f"harness overhead: run_job {t_job:.3f} s vs direct calls {t_direct:.3f} s (x{t_job / t_direct:.3f})")
        if "--no-memory" in sys.argv:
            return
        # memory: 10 vs 100 clips, one worker process each (children's peak RSS)
        from lossbench.audio import save_audio
        from lossbench.corpus import default_corpus

        big = tmp / "corpus100"
        refs = default_corpus()
        for i in range(100):
            r = refs[i % len(refs)]
            save_audio(big / f"c{i:03d}.flac", r.load(16000).samples, 16000)
        for n in (10, 100):
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            wall, ran, _ = timed_sweep(tmp, 2, n, str(big))
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            print(f"{n:3d} clips: {ran} tasks in {wall:.1f} s; peak RSS of a worker {max(peak, before) / 1024:.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
