"""The Chromium client: Debian's Chromium, headless, with two WebRTC peer connections whose media goes through the
relay (``chromium_page.html``), in a network namespace of its own (``chromium_ns.py``).

The clip (after ``lead_in_s`` of silence, the time the connection takes to come up) is Chromium's fake microphone;
pc1 sends it with Opus (``bitrate``, in-band ``fec``, ``dtx`` set through the SDP's fmtp line), pc2 receives it,
and its track is recorded through WebAudio at 48 kHz. The row carries NetEq's numbers from ``getStats()``:
concealed and silently concealed samples, concealment events, samples inserted for deceleration and removed for
acceleration, the mean jitter-buffer delay, packets lost and received, FEC packets received.

Chromium does not tell which RTP timestamp a recorded sample belongs to, so the recording is placed by correlating
it with the clip, then aligned per utterance (NetEq stretches time). Needs root for ``unshare -n`` (CI and these
machines run as root).
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from lossbench.errors import ConfigError
from lossbench.live.clients import ClientRun, RelaySettings
from lossbench.live.procs import Proc, processes
from lossbench.live.relay import LiveError

STATS = {  # getStats() inbound-rtp field -> column
    "concealedSamples": "client_concealed_samples", "silentConcealedSamples": "client_silent_concealed_samples",
    "concealmentEvents": "client_concealment_events",
    "insertedSamplesForDeceleration": "client_inserted_samples_for_deceleration",
    "removedSamplesForAcceleration": "client_removed_samples_for_acceleration",
    "totalSamplesReceived": "client_total_samples_received", "packetsLost": "client_packets_lost",
    "packetsReceived": "client_packets_received", "packetsDiscarded": "client_packets_discarded",
    "fecPacketsReceived": "client_fec_packets_received", "fecPacketsDiscarded": "client_fec_packets_discarded",
    "jitterBufferDelay": "client_jitter_buffer_delay_s", "jitterBufferEmittedCount": "client_jitter_buffer_emitted",
    "jitter": "client_jitter_s",
}


class ChromiumClient:
    """``chromium:bitrate=32000,fec=1,dtx=0``.

    Args:
        bitrate: Opus's maxaveragebitrate (bit/s, 6000-510000).
        fec: in-band FEC (useinbandfec).
        dtx: discontinuous transmission (usedtx).
        lead_in_s: silence before the clip on the fake microphone, while the connection comes up.
    """

    name = "chromium"

    def __init__(self, bitrate: int = 32000, fec: bool = True, dtx: bool = False, lead_in_s: float = 3.0) -> None:
        if not 6000 <= int(bitrate) <= 510000:
            raise ConfigError(f"live client chromium: bitrate must lie in [6000, 510000] bit/s, got {bitrate!r}")
        if not 1.0 <= float(lead_in_s) <= 30.0:
            raise ConfigError(f"live client chromium: lead_in_s must lie in 1..30 s, got {lead_in_s!r}")
        self.bitrate, self.fec, self.dtx, self.lead_in_s = int(bitrate), bool(fec), bool(dtx), float(lead_in_s)
        self.label = f"chromium WebRTC opus {self.bitrate / 1000:g} kbit/s{' +FEC' if self.fec else ''}, NetEq"

    @staticmethod
    def binary() -> str | None:
        return shutil.which("chromium") or shutil.which("chromium-browser")

    def check(self) -> None:
        if self.binary() is None:
            raise LiveError("live client chromium needs Debian's chromium package (make setup installs it)")
        for tool, pkg in (("unshare", "util-linux"), ("ip", "iproute2")):
            if shutil.which(tool) is None:
                raise LiveError(f"live client chromium needs {tool!r} (Debian package {pkg})")
        p = subprocess.run(["unshare", "-n", "--", "ip", "link", "add", "lbchk", "type", "ifb"], capture_output=True,
                           text=True, check=False)
        if p.returncode != 0:
            raise LiveError("live client chromium runs in a network namespace of its own and could not make one "
                            f"(`unshare -n` with an ifb device needs root): {p.stderr.strip() or p.returncode}")

    def twin(self) -> tuple[str, str, str]:
        codec = f"opus:bitrate={self.bitrate},sample_rate_hz=48000"
        if self.fec:
            codec += ",fec=1,loss_perc=10"
        if self.dtx:
            codec += ",dtx=1"
        return codec, ("opus-fec" if self.fec else "opus-plc"), "tsm"

    def run(self, clip_wav: Path, relays: RelaySettings, out_dir: Path, duration_s: float) -> ClientRun:
        import soundfile as sf

        x, sr = sf.read(str(clip_wav), dtype="float32")
        fake = out_dir / "chromium_input.wav"
        sf.write(str(fake), np.concatenate([np.zeros(int(self.lead_in_s * sr), np.float32), x]), sr,
                 subtype="PCM_16")
        for f in ("received.f32", "chromium.json", "relay.pkl"):
            (out_dir / f).unlink(missing_ok=True)
        ch = relays.channel
        record_ms = int((self.lead_in_s + duration_s + 1.5) * 1000)
        timeout_s = record_ms / 1000 + 40
        args = {"out": str(out_dir), "clip": str(fake.resolve()), "chromium": self.binary(),
                "channel": {"loss": ch.loss, "delay": ch.delay, "jitter": ch.jitter, "seed": ch.seed,
                            "packet_ms": ch.packet_ms, "packet_bytes": ch.packet_bytes,
                            "max_seconds": ch.max_seconds},
                "lateness_limit_ms": relays.lateness_limit_ms, "drops_limit": relays.drops_limit,
                "page": {"bitrate": self.bitrate, "fec": int(self.fec), "dtx": int(self.dtx),
                         "record_ms": record_ms},
                "timeout_s": timeout_s}
        (out_dir / "chromium_args.json").write_text(json.dumps(args))
        with processes() as procs:
            p = Proc("chromium client", ["unshare", "-n", "--", sys.executable, "-m",
                                         "lossbench.live.clients.chromium_ns", str(out_dir / "chromium_args.json")])
            procs.append(p)
            code = p.wait(timeout_s + 30)
            if code != 0:
                raise p.fail(f"exit status {code}")
        res = json.loads((out_dir / "chromium.json").read_text())
        if (out_dir / "relay.pkl").exists():
            relays.used.append(pickle.loads((out_dir / "relay.pkl").read_bytes()))
        if res.get("error"):
            tail = ""
            err = out_dir / "chromium.stderr"
            if err.exists():
                lines = [ln for ln in err.read_text(errors="replace").splitlines() if ln.strip()]
                tail = " | ".join(lines[-4:])
            raise LiveError(f"chromium client: the page failed: {res['error'].splitlines()[0]}"
                            + (f"; chromium's last stderr lines: {tail}" if tail else ""))
        if not (out_dir / "received.f32").exists():
            raise LiveError("chromium client: the page posted no audio")
        audio = np.frombuffer((out_dir / "received.f32").read_bytes(), dtype=np.float32).copy()
        rate = int(res.get("rate") or 48000)
        inbound = (res.get("stats") or {}).get("inbound", {})
        cols: dict[str, object] = {"client": "chromium", "client_label": self.label}
        for k, col in STATS.items():
            v = inbound.get(k)
            cols[col] = float(v) if isinstance(v, (int, float)) else math.nan
        emitted = cols["client_jitter_buffer_emitted"]
        cols["client_jitter_buffer_mean_ms"] = (1000.0 * float(cols["client_jitter_buffer_delay_s"]) /  # type: ignore[arg-type]
                                                float(emitted) if isinstance(emitted, float) and emitted > 0
                                                else math.nan)
        codec = (res.get("stats") or {}).get("codec", {})
        cols["client_fmtp"] = codec.get("sdpFmtpLine")
        cols["client_connected_s"] = res.get("connected_s")
        syncs = [(float(a), int(b)) for a, b in (res.get("stats") or {}).get("syncs", [])]
        return ClientRun(audio, rate, cols, None, search_s=self.lead_in_s + 4.0, rtp_map=syncs or None)
