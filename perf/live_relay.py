"""The live relay's limits: release lateness and delivery at rising packet rates, against direct loopback.

For each rate, a sender thread sends RTP packets of ``--bytes`` on loopback for ``--seconds``, once straight to a
receiver socket (the reference, timed in the same run) and once through the relay with a lossless channel and a
fixed 20 ms delay. It prints the relay's release lateness (actual - intended, p50 / p99 / max), the packets
delivered, the kernel's receive-buffer drops, and the one-way time through the relay (less the 20 ms it was asked
to add) as a ratio of the direct path's.

Run: ``python perf/live_relay.py [--rates 50,500,2000,5000] [--seconds 2]``.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import numpy as np

from lossbench.live import LiveChannel, Relay
from lossbench.live.relay import udp_rcvbuf_errors


def _rtp(k: int, n: int) -> bytes:
    return bytes([0x80, 96]) + (k & 0xFFFF).to_bytes(2, "big") + (k * 960 & 0xFFFFFFFF).to_bytes(4, "big") + \
        (0x4242).to_bytes(4, "big") + b"\0" * max(0, n - 12)


def _receiver():
    """A receiving socket and a thread that notes when each packet (by sequence number) arrived."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.2)
    got: dict[int, float] = {}
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                d = rx.recv(4096)
            except TimeoutError:
                continue
            got[int.from_bytes(d[2:4], "big")] = time.monotonic()

    th = threading.Thread(target=receive, daemon=True)
    th.start()
    return rx, got, stop, th


def run(rate: float, seconds: float, size: int, through_relay: bool) -> dict[str, float]:
    rx, got, stop, th = _receiver()
    relay = None
    dest = rx.getsockname()
    if through_relay:
        relay = Relay(LiveChannel("none", delay="20ms", packet_ms=1000.0 / rate, max_seconds=seconds + 30), dest)
        relay.start()
        dest = relay.listen_addr
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = int(rate * seconds)
    sent = np.zeros(n)
    drops0 = udp_rcvbuf_errors()
    t0 = time.monotonic()
    for k in range(n):
        while (now := time.monotonic()) < t0 + k / rate:
            time.sleep(min(0.0005, t0 + k / rate - now))
        sent[k] = time.monotonic()
        tx.sendto(_rtp(k, size), dest)
    time.sleep(0.3)
    stop.set()
    th.join()
    if relay is not None:
        relay.stop()
    drops1 = udp_rcvbuf_errors()
    rx.close()
    tx.close()
    idx = np.array(sorted(k for k in got if k < n), int)
    owd = np.array([got[k] for k in idx]) - sent[idx] if idx.size else np.zeros(0)
    out = {"delivered": idx.size / n, "owd_ms": 1e3 * float(np.median(owd)) if owd.size else float("nan"),
           "drops": (drops1 - drops0) if drops0 is not None and drops1 is not None else -1}
    if relay is not None:
        s = relay.summary()
        out |= {"p50": s["live_lateness_p50_ms"], "p99": s["live_lateness_p99_ms"], "max": s["live_lateness_max_ms"],
                "owd_ms": out["owd_ms"] - 20.0}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="50,500,2000,5000")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--bytes", type=int, default=120)
    a = ap.parse_args()
    print(f"live relay, {a.bytes}-byte packets, {a.seconds:g} s per rate, lossless channel with a 20 ms delay")
    print(f"{'pkt/s':>6} {'direct ms':>10} {'relay ms':>9} {'ratio':>6} {'late p50':>9} {'p99':>7} {'max':>7} "
          f"{'delivered':>9} {'drops':>6}")
    for rate in (float(r) for r in a.rates.split(",")):
        d = run(rate, a.seconds, a.bytes, False)
        r = run(rate, a.seconds, a.bytes, True)
        print(f"{rate:6.0f} {d['owd_ms']:10.3f} {r['owd_ms']:9.3f} {r['owd_ms'] / d['owd_ms']:6.1f} "
              f"{r['p50']:9.3f} {r['p99']:7.3f} {r['max']:7.2f} {r['delivered']:9.3f} {r['drops']:6d}")


if __name__ == "__main__":
    main()
