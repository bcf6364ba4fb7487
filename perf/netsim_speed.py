"""Speed of the loss models and the simpy path.

Prints absolute rates (one core, this machine) and ratios against references
measured in the same run, so numbers from noisy machines stay comparable:

- vectorised ``sample`` vs the per-packet ``process().step`` of the same model,
  and vs NumPy drawing the same number of uniforms (the floor);
- the simulated path vs a bare simpy loop with one timeout per packet;
- the nr: link (Sionna) vs Bernoulli sampling of the same number of packets.

Run: ``python perf/netsim_speed.py [--packets N]``.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import best_of
import simpy

from lossbench.netsim import (
    AdaptivePlayout,
    Bernoulli,
    BottleneckConfig,
    Channel,
    GilbertElliott,
    Jitter,
    LossGen,
    Link,
    OnOffTraffic,
    PoissonTraffic,
    ThreeStateMarkov,
)




def bare_simpy(n: int) -> None:
    env = simpy.Environment()
    got = []

    def src():
        for i in range(n):
            yield env.timeout(0.02)
            ev = env.timeout(0.03, value=i)
            ev.callbacks.append(lambda e: got.append(e.value))

    env.process(src())
    env.run()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=10_000_000)
    ap.add_argument("--sim-packets", type=int, default=100_000)
    ap.add_argument("--nr-packets", type=int, default=100_000)
    args = ap.parse_args()
    n = args.packets
    rng = np.random.default_rng(0)

    t_uniform = best_of(lambda: rng.random(n))
    print(f"reference: numpy uniforms        {n / t_uniform / 1e6:8.1f} M/s")
    models = {
        "bernoulli(0.1)": Bernoulli(0.1),
        "gilbert-elliott(10%, burst 3)": GilbertElliott.from_rate_burst(0.1, 3.0, 0.0, 1.0),
        "gilbert-elliott soft": GilbertElliott(0.02, 0.2, 0.01, 0.7),
        "markov3 (WLAN)": ThreeStateMarkov(),
    }
    print(f"\nvectorised sample, {n:,} packets (target >= 10 M packets/s):")
    for name, m in models.items():
        t = best_of(lambda: m.sample(n, rng))
        steps = 200_000
        proc = m.process(rng)
        ts = best_of(lambda: [proc.step(0.0) for _ in range(steps)], 1) / steps
        print(
            f"  {name:32s} {n / t / 1e6:8.1f} M/s   x{(n / t) * ts:7.0f} vs per-packet step   "
            f"{t / t_uniform:5.2f}x the time of numpy uniforms"
        )

    # LossGen runs a GRU per packet in C (Opus 1.5's model through our shim): its own target
    m = LossGen(0.1)
    nl = min(n, 1_000_000)
    t = best_of(lambda: m.sample(nl, rng), 2)
    t_bern = best_of(lambda: Bernoulli(0.1).sample(nl, rng), 2)
    print(f"\nlossgen(0.1), {nl:,} packets through the Python API (target >= 500 k packets/s):")
    print(f"  lossgen                          {nl / t / 1e3:8.1f} k/s   {t / t_bern:7.0f}x the time of bernoulli(0.1)")

    # the nr: link on Sionna (fading, EESM, BLER look-up, HARQ), vectorised over packets; OLLA is a Python loop
    from lossbench.netsim.nr import NrLink

    nn = args.nr_packets
    t_nr_send, nr_sizes = np.arange(nn) * 0.02, np.full(nn, 100)
    NrLink().outcomes(t_nr_send[:10], nr_sizes[:10], rng)  # Sionna's import and the BLER tables: once
    t_bern = best_of(lambda: Bernoulli(0.1).sample(nn, rng), 3)
    print(f"\nnr: link, {nn:,} packets of 100 bytes through the Python API (target >= 20 k packets/s):")
    for name, m in (("nr TDL-A, ILLA, one shot", NrLink()),
                    ("nr preset=glaris", NrLink.from_preset("glaris")),
                    ("nr TDL-A, OLLA (a Python loop)", NrLink(la="olla")),
                    ("nr TDL-A, OLLA, HARQ 4 (IR)", NrLink(la="olla", harq=4, combining="ir", snr_db=5.0)),
                    ("nr rayleigh, ILLA", NrLink(profile="rayleigh"))):
        t = best_of(lambda: m.outcomes(t_nr_send, nr_sizes, np.random.default_rng(2)), 2)
        print(f"  {name:32s} {nn / t / 1e3:8.1f} k/s   {t / t_bern:7.0f}x the time of bernoulli(0.1)")

    k = args.sim_packets
    send = np.arange(k) * 0.02
    sizes = np.full(k, 100)
    t_bare = best_of(lambda: bare_simpy(k), 2)
    print(f"\nsimpy path, {k:,} packets (target >= 100k packets/s):")
    print(f"  reference: bare simpy loop       {k / t_bare / 1e3:8.1f} k/s")
    paths = {
        "loss + jitter + adaptive playout": Channel(
            (Link(ThreeStateMarkov(), 0.04, Jitter("normal", 0.01)),), playout=AdaptivePlayout()
        ),
        "2 links, loss + jitter + fixed": Channel(
            (Link(Bernoulli(0.05), 0.01, Jitter("exponential", 0.005)), Link(ThreeStateMarkov(), 0.03)),
        ),
        "bottleneck + cross traffic": Channel(
            (
                Link(
                    Bernoulli(0.01),
                    0.02,
                    Jitter("normal", 0.005),
                    BottleneckConfig(2e6, 50, cross_traffic=(PoissonTraffic(80, 1200), OnOffTraffic(0.5, 0.5, 80, 1200))),
                ),
            ),
            playout=AdaptivePlayout(),
        ),
    }
    for name, ch in paths.items():
        log: dict = {}

        def go():
            log["rec"] = ch.transmit_times(send, sizes, np.random.default_rng(1))

        t = best_of(go, 2)
        extra = ""
        if "cross_sent" in log["rec"].meta:
            extra = f"   (+{log['rec'].meta['cross_sent']:,} cross packets simulated)"
        print(f"  {name:32s} {k / t / 1e3:8.1f} k/s   {t / t_bare:5.2f}x the bare loop's time{extra}")


if __name__ == "__main__":
    main()
