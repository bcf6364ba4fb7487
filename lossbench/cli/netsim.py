"""``lossbench netsim``: loss models, netem lines and path simulation."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from lossbench.cli.common import console, friendly_errors
from lossbench.errors import ConfigError
from lossbench.netsim.spec import parse_cross, parse_playout, parse_rate

app = typer.Typer(help="Loss models and the simulated packet path.", no_args_is_help=True)


@app.command()
@friendly_errors
def models() -> None:
    """List the loss models and their parameters."""
    from lossbench.netsim.spec import LOSS_MODELS

    t = Table(title="loss models")
    for c in ("name", "parameters", "description"):
        t.add_column(c)
    for name in LOSS_MODELS.names():
        f = LOSS_MODELS.get(name)
        params = ", ".join(inspect.signature(f).parameters)
        t.add_row(name, params, (inspect.getdoc(f) or "").splitlines()[0])
    console.print(t)


def _stats_table(spec: str, packets: int | None, seed: int) -> None:
    from lossbench.netsim.spec import make_loss_model
    from lossbench.traces.stats import trace_stats

    m = make_loss_model(spec)
    st = m.stats()
    if packets is None:
        packets = 100_000 if hasattr(m, "outcomes") else 1_000_000
    outcome = None
    link: Any = m  # a link model (nr:) has outcomes() and packet_bytes beyond the LossModel interface
    t0 = time.perf_counter()
    if hasattr(m, "outcomes"):  # a link model (nr:): loss, delay and what the link did, per packet
        from lossbench.core import LossTrace

        outcome = link.outcomes(np.arange(packets) * 0.02, np.full(packets, link.packet_bytes),
                                np.random.default_rng(seed))
        tr = LossTrace(outcome.lost, 0.02)
    else:
        tr = m.sample(packets, np.random.default_rng(seed))
    took = time.perf_counter() - t0
    s = trace_stats(tr)
    console.print(f"model: {m.describe()}")
    t = Table()
    t.add_column("statistic")
    t.add_column("closed form", justify="right")
    t.add_column(f"sampled ({packets} packets, seed {seed})", justify="right")
    rows = [
        ("loss rate %", 100 * st.loss_rate if st else None, 100 * s.loss_rate),
        ("mean burst (packets)", st.mean_burst if st else None, s.mean_burst),
        ("mean gap (packets)", st.mean_gap if st else None, s.mean_gap),
        ("P(loss | loss)", st.p_loss_given_loss if st else None, s.p_loss_given_loss),
        ("longest burst", None, s.longest_burst),
    ]
    for name, a, b in rows:
        t.add_row(name, "-" if a is None else f"{a:.4f}", f"{b:.4f}" if isinstance(b, float) else str(b))
    console.print(t)
    if outcome is not None:
        link_table = Table(title=f"{m.name} link: {packets} packets of {link.packet_bytes} bytes every 20 ms, "
                                 f"in {took:.2f} s ({packets / took:,.0f} packets/s)")
        link_table.add_column("quantity")
        link_table.add_column("value", justify="right")
        link_table.add_row("first-attempt BLER %", f"{100 * outcome.first_attempt_bler:.3f}")
        link_table.add_row("residual loss % (after HARQ)", f"{100 * outcome.lost.mean():.3f}")
        d = 1e3 * outcome.delay_s[~outcome.lost]
        if d.size:
            link_table.add_row("HARQ delay p50 / p95 / p99 / max (ms)",
                               " / ".join(f"{np.percentile(d, q):.1f}" for q in (50, 95, 99)) + f" / {d.max():.1f}")
        att = np.bincount(outcome.attempts)
        link_table.add_row("transmissions used (1, 2, ...)", ", ".join(str(int(x)) for x in att[1:]))
        console.print(link_table)
        h = Table(title="MCS histogram (first transmission)")
        for c in ("MCS", "count", "share %"):
            h.add_column(c, justify="right")
        mc = np.bincount(outcome.mcs)
        for mcs in np.flatnonzero(mc):
            h.add_row(str(mcs), str(int(mc[mcs])), f"{100 * mc[mcs] / packets:.2f}")
        console.print(h)
    if st is None:
        console.print(f"{m.name} has no closed form: every statistic above is empirical, over {packets} packets")
        for title, hist in (("burst length (lost in a row)", s.bursts), ("gap length (received in a row)", s.gaps)):
            h = Table(title=f"{title}: histogram")
            for c in ("length", "count", "share %"):
                h.add_column(c, justify="right")
            total = sum(hist.values()) or 1
            keys = sorted(hist)
            shown = [k for k in keys if k <= 10]
            for k in shown:
                h.add_row(str(k), str(hist[k]), f"{100 * hist[k] / total:.2f}")
            rest = [k for k in keys if k > 10]
            if rest:
                n_rest = sum(hist[k] for k in rest)
                h.add_row(f"11..{rest[-1]}", str(n_rest), f"{100 * n_rest / total:.2f}")
            console.print(h)


@app.command()
@friendly_errors
def stats(
    spec: Annotated[str, typer.Argument(help="loss model spec, e.g. 'markov3' or 'gilbert:loss_rate=0.1,mean_burst=3'")],
    packets: Annotated[int | None, typer.Option(min=1, help="default: 1,000,000 (nr: 100,000)")] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Closed-form statistics of a loss model next to a long sample's; for nr: also the first-attempt BLER, the
    MCS histogram and the HARQ delays."""
    _stats_table(spec, packets, seed)


@app.command()
@friendly_errors
def netem(
    line: Annotated[str, typer.Argument(help="a netem loss clause, e.g. 'loss gemodel 1% 10% 70% 0.1%'")],
    packets: Annotated[int, typer.Option(min=1)] = 1_000_000,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Paste the loss clause of a 'tc qdisc ... netem' line and see its statistics."""
    _stats_table(f"netem:{line}", packets, seed)


@app.command()
@friendly_errors
def simulate(
    loss: Annotated[str | None, typer.Option(help="loss model spec of the link")] = None,
    trace: Annotated[Path | None, typer.Option(help="replay this trace file on the link")] = None,
    delay: Annotated[str, typer.Option(help="propagation delay, e.g. 40ms")] = "0ms",
    jitter: Annotated[str, typer.Option(help="none | normal:10ms | uniform:20ms | exponential:5ms | pareto:8ms[:shape] | "
                                            "lognormal:10ms[:sigma] | ar1:10ms[:rho] | spikes:300ms[:per_s] | "
                                            "periodic:200ms[:period]")] = "none",
    playout: Annotated[str, typer.Option(help="none | fixed:60ms | adaptive[:safety=4,...] | tsm[:quantile=0.95,...] | "
                                             "speex[:max_late_rate=4,...]")] = "none",
    bottleneck: Annotated[str | None, typer.Option(help="bottleneck rate, e.g. 1mbit")] = None,
    queue: Annotated[int, typer.Option(help="bottleneck queue size (packets)")] = 50,
    cross: Annotated[list[str] | None, typer.Option(help="cross traffic: poisson:rate=PPS,size=B | "
                                                         "onoff:on=S,off=S,rate=PPS,size=B")] = None,
    packets: Annotated[int, typer.Option(min=1, help="packets to send")] = 3000,
    frame_ms: Annotated[float, typer.Option(help="packet interval in ms")] = 20.0,
    payload_bytes: Annotated[int, typer.Option(help="payload size (40 header bytes are added)")] = 60,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path | None, typer.Option("-o", "--out",
                                             help="write the effective loss pattern (lost or late) as a trace")] = None,
) -> None:
    """Send a constant-rate packet stream through a simulated path and report what arrived."""
    from lossbench.core import LossTrace
    from lossbench.netsim.network import BottleneckConfig, Channel, Link
    from lossbench.netsim.spec import make_loss_model, parse_jitter, parse_seconds

    if loss and trace:
        raise ConfigError("give --loss or --trace, not both")
    timing = None
    if trace:
        from lossbench.traces.formats import read_trace

        timing = read_trace(trace).timing  # a timing trace (CSV with arrival times, a pcap) replays its delays too
    model = (None if timing is not None else make_loss_model(f"trace:file={trace}") if trace
             else (make_loss_model(loss) if loss else None))
    bn = None
    if bottleneck:
        bn = BottleneckConfig(parse_rate(bottleneck), queue_packets=queue,
                              cross_traffic=tuple(parse_cross(c) for c in cross or []))
    elif cross:
        raise ConfigError("--cross needs a --bottleneck to share")
    ch = Channel(links=(Link(model, parse_seconds(delay), parse_jitter(jitter), bn, timing=timing),),
                 playout=parse_playout(playout))
    send = np.arange(packets) * frame_ms / 1000.0
    rec = ch.transmit_times(send, np.full(packets, payload_bytes + 40), np.random.default_rng(seed))
    d = rec.arrival_time_s[rec.arrived] - send[rec.arrived]
    order = np.argsort(rec.arrival_time_s[rec.arrived], kind="stable")
    reordered = int((np.diff(np.flatnonzero(rec.arrived)[order]) < 0).sum())
    t = Table(title=f"simulated path: {packets} packets every {frame_ms:g} ms")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("loss model", model.describe() if model else "none")
    t.add_row("network loss %", f"{100 * rec.network_loss_rate:.2f}")
    t.add_row("  link losses", str(rec.meta["link_losses"]))
    t.add_row("  queue drops", str(rec.meta["queue_drops"]))
    t.add_row("late (after playout deadline) %", f"{100 * rec.late_rate:.2f}")
    t.add_row("effective loss %", f"{100 * rec.effective_loss_rate:.2f}")
    if d.size:
        t.add_row("one-way delay mean / p95 / max (ms)", f"{1e3 * d.mean():.1f} / {1e3 * np.percentile(d, 95):.1f} "
                                                         f"/ {1e3 * d.max():.1f}")
    t.add_row("reordered arrivals", str(reordered))
    if "playout_delay_s" in rec.meta:
        pd = rec.meta["playout_delay_s"]
        pd = pd[~np.isnan(pd)]
        if pd.size:
            t.add_row("playout delay min / max (ms)", f"{1e3 * pd.min():.1f} / {1e3 * pd.max():.1f}")
    plan = rec.playout_plan
    if plan is not None:
        fin = np.isfinite(rec.playout_deadline_s)
        pdl = 1e3 * (rec.playout_deadline_s[fin] - send[fin])
        t.add_row(f"{plan.policy} playout delay mean / p95 / max (ms)",
                  f"{pdl.mean():.1f} / {np.percentile(pdl, 95):.1f} / {pdl.max():.1f}")
        for k, v in plan.rates().items():
            t.add_row(f"  {k.replace('_', ' ')} %", f"{100 * v:.2f}")
    if "cross_sent" in rec.meta:
        t.add_row("cross packets sent / dropped", f"{rec.meta['cross_sent']} / {rec.meta['cross_drops']}")
    console.print(t)
    if out:
        from lossbench.traces.formats import write_trace

        eff = LossTrace(~rec.usable, frame_ms / 1000.0,
                        meta={"simulated": True, "seed": seed, "loss": model.describe() if model else None})
        write_trace(eff, out, sidecar=True)
        console.print(f"wrote effective loss pattern to {out}")
