"""``lossbench live``: real RTP clients through lossbench's channels in real time (docs/live.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lossbench.cli.common import console, friendly_errors

app = typer.Typer(help="Live mode: real clients (GStreamer, Chromium, pjsua) through a channel in real time.",
                  no_args_is_help=True)

ChannelOpt = Annotated[str, typer.Option("--channel", help="loss model spec (gilbert:loss_rate=0.1,mean_burst=3, "
                                                           "wlan, lossgen:loss_rate=0.1, nr:..., "
                                                           "trace:file=PATH) or none")]
DelayOpt = Annotated[str | None, typer.Option(help="one-way delay, e.g. 40ms")]
JitterOpt = Annotated[str | None, typer.Option(help="jitter: normal:10ms | uniform:20ms | ar1:10ms[:rho] | "
                                                    "spikes:300ms[:per_s] | ... (as lossbench netsim simulate)")]
SeedOpt = Annotated[int, typer.Option(help="the channel's seed: the same seed drops the same packets")]
PacketOpt = Annotated[float, typer.Option(help="the packet interval the channel's draw assumes (ms)")]
MaxOpt = Annotated[float, typer.Option(help="seconds of each flow the channel is drawn for")]
LateOpt = Annotated[float, typer.Option(help="flag the run when the p99 release lateness exceeds this (ms)")]


def _channel(channel: str, delay: str | None, jitter: str | None, seed: int, packet_ms: float, max_seconds: float):
    from lossbench.live import LiveChannel

    return LiveChannel(channel, delay=delay, jitter=jitter, seed=seed, packet_ms=packet_ms, max_seconds=max_seconds)


@app.command("run")
@friendly_errors
def run_cmd(
    client: Annotated[str, typer.Option(help="gstreamer[:codec=opus,bitrate=24000,fec=1,latency=60] | "
                                             "chromium[:bitrate=32000,fec=1,dtx=0] | "
                                             "pjsua[:codec=g722|pcmu|pcma|speex|speex-nb|gsm]")],
    clip: Annotated[Path, typer.Option(help="the WAV (or FLAC) to send: 8, 16, 24, 32 or 48 kHz")],
    out: Annotated[Path, typer.Option(help="run directory: results.parquet, received.wav, timing.csv, "
                                           "capture.pcapng, twin/")],
    channel: ChannelOpt = "none",
    delay: DelayOpt = None,
    jitter: JitterOpt = None,
    seed: SeedOpt = 0,
    metrics: Annotated[str, typer.Option(help="comma-separated metric names")] = "pesq_wb,stoi,plcmos",
    repeats: Annotated[int, typer.Option(help="run the same seed this many times and report the spread")] = 1,
    twin: Annotated[bool, typer.Option(help="replay timing.csv through lossbench's model of the client")] = True,
    packet_ms: PacketOpt = 20.0,
    max_seconds: MaxOpt = 600.0,
    lateness_limit_ms: LateOpt = 5.0,
) -> None:
    """Play a clip through a real sender, the relay and a real receiver; align, score, and run the twin."""
    import pandas as pd

    from lossbench.live.run import live_run

    ch = _channel(channel, delay, jitter, seed, packet_ms, max_seconds)
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    path = live_run(client, clip, ch, out, names, repeats=repeats, twin=twin, lateness_limit_ms=lateness_limit_ms,
                    log=console.print)
    df = pd.read_parquet(path)
    t = Table(title=f"live run: {client} on {clip.name} through {ch.label} (seed {seed})")
    t.add_column("row")
    t.add_column("loss %", justify="right")
    for m in names:
        t.add_column(m, justify="right")
    for _, r in df.iterrows():
        who = f"live #{int(r['live_repeat'])}" if r.get("live_role") == "live" else str(r["system"])
        loss = r.get("live_loss") if r.get("live_role") == "live" else r.get("effective_loss")
        t.add_row(who, f"{100 * float(loss):.1f}" if loss == loss else "", *[
            f"{float(r[m]):.3f}" if m in r and r[m] == r[m] and r[m] is not None else "" for m in names])
    console.print(t)
    live = df[df["live_role"] == "live"]
    for _, r in live.iterrows():
        if r.get("live_flagged"):
            console.print(f"[yellow]flagged[/yellow]: {r['live_flag']}")
    console.print(f"relay lateness p50 / p99 / max: {live['live_lateness_p50_ms'].median():.2f} / "
                  f"{live['live_lateness_p99_ms'].max():.2f} / {live['live_lateness_max_ms'].max():.2f} ms; "
                  f"alignment by {live['live_align_by'].iloc[0]}, residual "
                  f"{live['live_align_residual_ms'].max():.2f} ms")
    console.print(f"results: {path}")


@app.command("relay")
@friendly_errors
def relay_cmd(
    target: Annotated[str, typer.Option(help="where to forward: 127.0.0.1:PORT (the receiver)")],
    listen_port: Annotated[int, typer.Option(help="the port the sender sends to (loopback)")],
    channel: ChannelOpt = "none",
    delay: DelayOpt = None,
    jitter: JitterOpt = None,
    seed: SeedOpt = 0,
    out_port: Annotated[int, typer.Option(help="the port packets leave from (0: any)")] = 0,
    impair: Annotated[str, typer.Option(help="both | forward | none: which direction's media is impaired")] = "both",
    seconds: Annotated[float, typer.Option(help="stop after this long (0: at Ctrl-C)")] = 0.0,
    out: Annotated[Path | None, typer.Option(help="write timing.csv, capture.pcapng and relay.json here")] = None,
    packet_ms: PacketOpt = 20.0,
    max_seconds: MaxOpt = 600.0,
    lateness_limit_ms: LateOpt = 5.0,
) -> None:
    """Forward UDP from a sender to a receiver on loopback through a channel, in real time."""
    import json

    from lossbench.errors import ConfigError
    from lossbench.live import Relay

    host, _, port = target.rpartition(":")
    if not host.startswith("127.") or not port.isdigit():
        raise ConfigError(f"--target must be a loopback address 127.x.y.z:PORT, got {target!r}")
    ch = _channel(channel, delay, jitter, seed, packet_ms, max_seconds)
    relay = Relay(ch, (host, int(port)), listen_port=listen_port, out_port=out_port, impair=impair,
                  lateness_limit_ms=lateness_limit_ms).start()
    console.print(f"relay {relay.listen_addr[0]}:{relay.listen_addr[1]} -> {target} (from port {relay.out_addr[1]}) "
                  f"through {ch.label}, seed {seed}" + (f", for {seconds:g} s" if seconds else "; Ctrl-C stops"))
    try:
        end = time.monotonic() + seconds if seconds > 0 else float("inf")
        while time.monotonic() < end:
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        relay.stop()
    s = relay.summary()
    console.print({k: v for k, v in s.items() if k != "live_dropped_index"})
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if any(r.flow == 0 for r in relay.records):
            relay.write_timing(out / "timing.csv")
        relay.write_pcapng(out / "capture.pcapng")
        (out / "relay.json").write_text(json.dumps(s, indent=1, default=str))
        console.print(f"wrote {out}/timing.csv, capture.pcapng, relay.json")
