"""A GStreamer Opus/RTP sender or receiver, run as its own process by Debian's Python (``/usr/bin/python3``, which
has PyGObject and GStreamer's introspection data); it imports nothing from lossbench.

send:  filesrc ! wavparse ! audioconvert ! audioresample ! opusenc ! rtpopuspay ! udpsink (sync: real time)
recv:  udpsrc ! rtpjitterbuffer do-lost=true ! rtpopusdepay ! opusdec plc=true ! audioconvert ! audioresample
       ! audiorate skip-to-first=true ! wavenc ! filesink

The receiver prints ``ready`` once it is playing, stops on ``stop`` (or end of input) on stdin, and prints one JSON
line: the jitter buffer's and the decoder's statistics, and the RTP sequence number and timestamp of the first packet
it decoded, which place its first output sample on the sender's RTP timeline (``audiorate`` keeps every later sample
at its timestamp).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

# PyGObject is Debian's (python3-gi), not the venv's: imported by main(), so that lossbench's own import checks can
# import this module anywhere
Gst: Any = None
GLib: Any = None

CAPS = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload={pt}"


def _structure(s) -> dict:
    out: dict = {}
    if s is None:
        return out
    for i in range(s.n_fields()):
        k = s.nth_field_name(i)
        v = s.get_value(k)
        if isinstance(v, (int, float, str, bool)):
            out[k] = v
    return out


def _run(pipeline, wait_stdin: bool, timeout_s: float, on_stop=None) -> str | None:
    """Play until EOS (send) or until 'stop' on stdin then EOS (recv); an error message, or None."""
    loop = GLib.MainLoop()
    err: list[str] = []

    def on_msg(_bus, msg):
        if msg.type == Gst.MessageType.EOS:
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            e, dbg = msg.parse_error()
            err.append(f"{msg.src.get_name()}: {e.message} ({dbg})")
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_msg)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = bus.pop_filtered(Gst.MessageType.ERROR)
        why = ""
        if msg is not None:
            e, dbg = msg.parse_error()
            why = f": {msg.src.get_name()}: {e.message} ({dbg})"
        pipeline.set_state(Gst.State.NULL)
        return "the pipeline would not start" + why
    if wait_stdin:
        print("ready", flush=True)

        def wait():
            for line in sys.stdin:
                if line.strip() == "stop":
                    break
            if on_stop is not None:
                on_stop()
            pipeline.send_event(Gst.Event.new_eos())
            GLib.timeout_add(5000, loop.quit)  # an EOS that never comes through still ends the run

        threading.Thread(target=wait, daemon=True).start()
    GLib.timeout_add(int(timeout_s * 1000), loop.quit)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    return err[0] if err else None


def send(a) -> int:
    desc = (f"filesrc location={json.dumps(a.wav)} ! wavparse ! audioconvert ! audioresample quality=10 ! "
            f"audio/x-raw,rate=48000,channels=1 ! "
            f"opusenc bitrate={a.bitrate} bitrate-type=vbr audio-type=voice bandwidth=auto frame-size={a.frame_ms} "
            f"inband-fec={'true' if a.fec else 'false'} packet-loss-percentage={a.loss_perc} "
            f"dtx={'true' if a.dtx else 'false'} ! rtpopuspay pt={a.pt} ! "
            f"udpsink host=127.0.0.1 port={a.port} sync=true")
    p = Gst.parse_launch(desc)
    e = _run(p, False, a.timeout)
    if e:
        print(f"gstreamer sender: {e}", file=sys.stderr)
        return 1
    return 0


def recv(a) -> int:
    desc = (f"udpsrc name=src address=127.0.0.1 port={a.port} reuse=false caps=\"{CAPS.format(pt=a.pt)}\" ! "
            f"rtpjitterbuffer name=jb latency={a.latency} do-lost=true ! rtpopusdepay name=depay ! "
            f"opusdec name=dec plc=true use-inband-fec={'true' if a.fec else 'false'} ! audioconvert ! "
            f"audioresample ! audio/x-raw,rate={a.rate},channels=1,format=S16LE ! audiorate skip-to-first=true ! wavenc ! "
            f"filesink location={json.dumps(a.out)}")
    p = Gst.parse_launch(desc)
    first: dict = {}

    def probe(_pad, info):
        if not first:
            buf = info.get_buffer()
            ok, m = buf.map(Gst.MapFlags.READ)
            if ok:
                d = bytes(m.data[:12])
                buf.unmap(m)
                if len(d) >= 12:
                    first.update(seq=int.from_bytes(d[2:4], "big"), rtp_ts=int.from_bytes(d[4:8], "big"),
                                 ssrc=int.from_bytes(d[8:12], "big"), pts_ns=int(buf.pts))
        return Gst.PadProbeReturn.OK

    p.get_by_name("depay").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
    jb, dec = p.get_by_name("jb"), p.get_by_name("dec")
    stats: dict = {}

    def snapshot():
        stats["jitterbuffer"] = _structure(jb.get_property("stats"))
        try:
            stats["decoder"] = _structure(dec.get_property("stats"))
        except TypeError:
            stats["decoder"] = {}

    # the stats are read when asked to stop, before the pipeline goes down (NULL resets them)
    e = _run(p, True, a.timeout, snapshot)
    if "jitterbuffer" not in stats:
        snapshot()
    if e:
        print(f"gstreamer receiver: {e}", file=sys.stderr, flush=True)
    print(json.dumps({"first": first, **stats, "error": e}), flush=True)
    return 1 if e else 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("send", "recv"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--wav")
    ap.add_argument("--out")
    ap.add_argument("--bitrate", type=int, default=24000)
    ap.add_argument("--frame-ms", type=int, default=20)
    ap.add_argument("--fec", type=int, default=0)
    ap.add_argument("--loss-perc", type=int, default=0)
    ap.add_argument("--dtx", type=int, default=0)
    ap.add_argument("--pt", type=int, default=96)
    ap.add_argument("--latency", type=int, default=60)
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args()
    global Gst, GLib
    import gi  # type: ignore[import-not-found, unused-ignore]

    gi.require_version("Gst", "1.0")
    from gi.repository import GLib as _GLib  # type: ignore[import-not-found, unused-ignore]
    from gi.repository import Gst as _Gst  # type: ignore[import-not-found, unused-ignore]

    Gst, GLib = _Gst, _GLib
    Gst.init(None)
    return send(a) if a.mode == "send" else recv(a)


if __name__ == "__main__":
    sys.exit(main())
