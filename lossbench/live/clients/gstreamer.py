"""The GStreamer client: Opus over RTP from ``opusenc``/``rtpopuspay`` to ``rtpjitterbuffer``/``opusdec``.

Both ends run ``gst_peer.py`` under Debian's Python (PyGObject and GStreamer's introspection data are Debian
packages: ``make setup`` installs ``gstreamer1.0-tools``, ``gstreamer1.0-plugins-base``,
``gstreamer1.0-plugins-good``, ``python3-gi``, ``gir1.2-gstreamer-1.0``). The sender paces itself in real time
(``udpsink sync=true``); the receiver's jitter buffer holds ``latency`` ms and reports lost packets to the decoder
(``do-lost``), whose PLC (and in-band FEC with ``fec=1``) fills them; ``audiorate`` keeps the output on the RTP
timeline.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

from lossbench.errors import ConfigError
from lossbench.live.clients import ClientRun, RelaySettings, resources
from lossbench.live.procs import Proc, free_port, processes
from lossbench.live.relay import LiveError

SYSTEM_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = ("gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good python3-gi "
                   "gir1.2-gstreamer-1.0")
OUTPUT_RATE = 48000


class GStreamerClient:
    """``gstreamer:codec=opus,bitrate=24000,fec=0,loss_perc=0,dtx=0,latency=60``.

    Args:
        codec: opus (the one codec wired; its RTP payload format is RFC 7587).
        bitrate: Opus target bit/s (6000-510000).
        fec: in-band FEC (LBRR) at the sender and its use at the receiver.
        loss_perc: the loss percentage the encoder expects (default 10 with fec, else 0).
        dtx: discontinuous transmission.
        latency: the jitter buffer's latency in ms.
    """

    name = "gstreamer"

    def __init__(self, codec: str = "opus", bitrate: int = 24000, fec: bool = False, loss_perc: int | None = None,
                 dtx: bool = False, latency: int = 60) -> None:
        if codec != "opus":
            raise ConfigError(f"live client gstreamer: codec must be opus, got {codec!r}")
        if not 6000 <= int(bitrate) <= 510000:
            raise ConfigError(f"live client gstreamer: bitrate must lie in [6000, 510000] bit/s, got {bitrate!r}")
        lp = (10 if fec else 0) if loss_perc is None else int(loss_perc)
        if not 0 <= lp <= 100:
            raise ConfigError(f"live client gstreamer: loss_perc must lie in 0..100, got {loss_perc!r}")
        if not 0 <= int(latency) <= 5000:
            raise ConfigError(f"live client gstreamer: latency must lie in 0..5000 ms, got {latency!r}")
        self.bitrate, self.fec, self.loss_perc, self.dtx, self.latency = int(bitrate), bool(fec), lp, bool(dtx), \
            int(latency)
        self.label = (f"gstreamer opus {self.bitrate / 1000:g} kbit/s{' +FEC' if self.fec else ''}, "
                      f"rtpjitterbuffer {self.latency} ms")

    def check(self) -> None:
        import subprocess

        if shutil.which(SYSTEM_PYTHON) is None:
            raise LiveError(f"live client gstreamer needs Debian's {SYSTEM_PYTHON} with PyGObject; install "
                            f"the Debian packages {DEBIAN_PACKAGES} (make setup does)")
        code = ("import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; Gst.init(None); "
                "import sys; miss = [e for e in ('opusenc', 'opusdec', 'rtpopuspay', 'rtpopusdepay', "
                "'rtpjitterbuffer', 'udpsrc', 'udpsink', 'wavparse', 'wavenc', 'audiorate') "
                "if Gst.ElementFactory.find(e) is None]; print(' '.join(miss)); sys.exit(1 if miss else 0)")
        try:
            p = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LiveError(f"live client gstreamer: {SYSTEM_PYTHON} would not run ({e}); install the Debian "
                            f"packages {DEBIAN_PACKAGES} (make setup does)") from None
        if p.returncode != 0:
            why = (f"missing GStreamer elements: {p.stdout.strip()}" if p.stdout.strip() else
                   (p.stderr.strip().splitlines() or ["no PyGObject"])[-1])
            raise LiveError(f"live client gstreamer is not usable here ({why}); install the Debian packages "
                            f"{DEBIAN_PACKAGES} (make setup does)")

    def twin(self) -> tuple[str, str, str]:
        # the libopus GStreamer's opusenc/opusdec link (Debian's), so that live - twin is the receiver's doing,
        # not another Opus release's
        codec = f"opus:bitrate={self.bitrate},sample_rate_hz=48000,lib=system"
        if self.fec:
            codec += f",fec=1,loss_perc={self.loss_perc}"
        if self.dtx:
            codec += ",dtx=1"
        return codec, ("opus-fec" if self.fec else "opus-plc"), f"fixed:{self.latency}ms"

    def run(self, clip_wav: Path, relays: RelaySettings, out_dir: Path, duration_s: float) -> ClientRun:
        import soundfile as sf

        peer = str(resources() / "gst_peer.py")
        raw = out_dir / "received_raw.wav"
        raw.unlink(missing_ok=True)
        port = free_port()
        with processes() as procs:
            recv = Proc("gstreamer receiver", [SYSTEM_PYTHON, peer, "recv", "--port", str(port), "--out", str(raw),
                                               "--latency", str(self.latency), "--fec", str(int(self.fec)),
                                               "--rate", str(OUTPUT_RATE)], stdin=True)
            procs.append(recv)
            recv.wait_for("ready", 20.0)
            relay = relays.make(("127.0.0.1", port))
            relay.start()
            try:
                send = Proc("gstreamer sender", [SYSTEM_PYTHON, peer, "send", "--port", str(relay.listen_addr[1]),
                                                 "--wav", str(clip_wav), "--bitrate", str(self.bitrate),
                                                 "--fec", str(int(self.fec)), "--loss-perc", str(self.loss_perc),
                                                 "--dtx", str(int(self.dtx)),
                                                 "--timeout", str(duration_s + 30)])
                procs.append(send)
                code = send.wait(duration_s + 40.0)
                if code != 0:
                    raise send.fail(f"exit status {code}")
                # what is still in the channel and the jitter buffer comes out before the receiver stops
                time.sleep(relay.channel.max_delay_s(duration_s) + self.latency / 1000.0 + 0.4)
                recv.say("stop")
                info = recv.read_json(20.0, "statistics when asked to stop")
            finally:
                relay.stop()
            if info.get("error"):
                raise recv.fail(str(info["error"]))
            recv.wait(10.0)
        if not raw.exists() or raw.stat().st_size <= 44:
            raise LiveError(f"gstreamer receiver: wrote no audio to {raw} (did any packet reach it?)")
        audio, sr = sf.read(str(raw), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        first = info.get("first") or {}
        offset = None
        sent_ts = relay.first_timestamp()
        if "rtp_ts" in first and sent_ts is not None:
            offset = int(round(((int(first["rtp_ts"]) - sent_ts) % (1 << 32)) * sr / 48000))
        jb, dec = info.get("jitterbuffer", {}), info.get("decoder", {})
        cols = {"client": "gstreamer", "client_label": self.label,
                "client_jb_pushed": jb.get("num-pushed"), "client_jb_lost": jb.get("num-lost"),
                "client_jb_late": jb.get("num-late"), "client_jb_duplicates": jb.get("num-duplicates"),
                "client_jb_avg_jitter_ms": (jb["avg-jitter"] / 1e6 if "avg-jitter" in jb else math.nan),
                "client_dec_gaps": dec.get("num-gap"),
                "client_dec_plc_ms": (dec["plc-duration"] / 1e6 if "plc-duration" in dec else math.nan),
                "client_first_seq": first.get("seq")}
        return ClientRun(audio, int(sr), cols, offset)

