"""The pjsua client: a SIP call between two pjsua2 (PJSIP 2.15, the ``pjsua2-python`` wheel) user agents on
loopback, its RTP through the relay, received by pjmedia's adaptive jitter buffer and the codec's concealment.

Each end is ``pj_peer.py`` in a process of its own (PJSIP allows one endpoint per process). The receiver's SDP
answer gives the relay's port as its media port, so the caller's RTP goes through the relay; RTCP is multiplexed
on the same port (``rtcp-mux``) and passes the relay unimpaired. The caller's offer is ``sendonly`` and carries the
one codec asked for; VAD is off, so every ``ptime`` (the channel's ``packet_ms``) carries a packet. Both ends'
conference bridges run at 16 kHz, clocked in real time by pjsua's null sound device; the receiver records the
call through the bridge.

The row carries pjmedia's jitter-buffer state (``pjmedia_jb_state``: the prefetch it settled on, its mean, min and
max delay, frames lost, discarded and played out of an empty buffer) and the RTCP receive statistics (packets,
loss, reordering, duplicates, jitter). pjsua does not tell which RTP timestamp a recorded sample belongs to, so
the recording is placed by correlation, then aligned per utterance; the clip's first packet is known exactly (the
sender reports how many packets it had sent when it connected the clip).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from lossbench.audio import resample
from lossbench.errors import ConfigError, choices
from lossbench.live.clients import ClientRun, RelaySettings, resources
from lossbench.live.procs import Proc, free_port, processes
from lossbench.live.relay import LiveError

#: codec option -> (lossbench's twin codec spec, its concealment, allowed packet durations in ms)
CODECS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    # PJSIP's G.722 shifts its PCM one bit (PJMEDIA_G722_DEFAULT_PCM_SHIFT)
    "g722": ("g722:pcm_shift=1", "g722-plc", (10, 20, 30, 40, 60)),
    "pcmu": ("g711:law=ulaw", "g711-plc", (10, 20, 30, 40, 60)),
    "pcma": ("g711:law=alaw", "g711-plc", (10, 20, 30, 40, 60)),
    # pjmedia's Speex defaults: quality 8, complexity 2 (PJMEDIA_CODEC_SPEEX_DEFAULT_QUALITY / _COMPLEXITY)
    "speex": ("speex:mode=wb,quality=8,complexity=2", "speex-plc", (20, 40, 60)),
    "speex-nb": ("speex:mode=nb,quality=8,complexity=2", "speex-plc", (20, 40, 60)),
    "gsm": ("gsm", "gsm-plc", (20, 40, 60)),
}
BRIDGE_RATE = 16000
PACKAGE = "pjsua2-python (pip; make setup installs it)"


class PjsuaClient:
    """``pjsua:codec=g722[,jb_init=..,jb_min_pre=..,jb_max_pre=..,jb_max=..]``.

    Args:
        codec: g722, pcmu, pcma, speex (wideband), speex-nb, gsm.
        jb_init, jb_min_pre, jb_max_pre, jb_max: pjsua's jitter-buffer settings in ms (its defaults where
            unset: adaptive prefetch, 500 ms maximum).
    """

    name = "pjsua"

    def __init__(self, codec: str = "g722", jb_init: int | None = None, jb_min_pre: int | None = None,
                 jb_max_pre: int | None = None, jb_max: int | None = None) -> None:
        if codec not in CODECS:
            raise ConfigError(f"live client pjsua: unknown codec {codec!r}; valid: {choices(list(CODECS))}")
        self.codec = codec
        self.ptime_ms = 20.0  # the channel's packet_ms, set by run()
        self.jb: dict[str, int] = {}
        for k, v in (("jb_init", jb_init), ("jb_min_pre", jb_min_pre), ("jb_max_pre", jb_max_pre),
                     ("jb_max", jb_max)):
            if v is None:
                continue
            if int(v) != v or not 0 <= int(v) <= 5000:
                raise ConfigError(f"live client pjsua: {k} must be a whole number of ms in 0..5000, got {v!r}")
            self.jb[k] = int(v)
        self.label = f"pjsua {codec}, pjmedia jitter buffer" + (
            f" ({', '.join(f'{k}={v}' for k, v in self.jb.items())})" if self.jb else "")

    def check(self) -> None:
        import subprocess

        p = subprocess.run([sys.executable, "-c", "import pjsua2"], capture_output=True, text=True, timeout=60,
                           check=False)
        if p.returncode != 0:
            why = (p.stderr.strip().splitlines() or ["it would not import"])[-1]
            raise LiveError(f"live client pjsua needs {PACKAGE}: {why}")

    def twin(self) -> tuple[str, str, str]:
        """The codec and concealment behind lossbench's adaptive buffer (Ramjee's algorithm 1) held to at least one
        packet of buffering, as pjmedia's jitter buffer holds at least one frame of prefetch."""
        codec, conc, _ = CODECS[self.codec]
        return codec, conc, f"adaptive:min_delay_s={self.ptime_ms / 1000:g}"

    def run(self, clip_wav: Path, relays: RelaySettings, out_dir: Path, duration_s: float) -> ClientRun:
        import soundfile as sf

        ptime = relays.channel.packet_ms
        allowed = CODECS[self.codec][2]
        if int(ptime) != ptime or int(ptime) not in allowed:
            raise ConfigError(f"live client pjsua: {self.codec} sends packets of {', '.join(map(str, allowed))} ms; "
                              f"the channel's packet_ms is {ptime!r}")
        self.ptime_ms = float(ptime)
        x, sr = sf.read(str(clip_wav), dtype="float32")
        x = resample(x, sr, BRIDGE_RATE)
        src = out_dir / "pjsua_input.wav"
        sf.write(str(src), x, BRIDGE_RATE, subtype="PCM_16")
        raw = out_dir / "received_raw.wav"
        raw.unlink(missing_ok=True)
        peer = str(resources() / "pj_peer.py")
        recv_sip, rtp, send_sip = free_port(), _free_even_port(), free_port()
        jb = [a for k, v in self.jb.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        common = ["--codec", self.codec, "--ptime", str(int(ptime))]
        with processes() as procs:
            relay = relays.make(("127.0.0.1", rtp))
            relay.start()
            try:
                recv = Proc("pjsua receiver", [sys.executable, peer, "recv", "--sip-port", str(recv_sip),
                                               "--rtp-port", str(rtp), "--advertise", str(relay.listen_addr[1]),
                                               "--out", str(raw), "--timeout", str(duration_s + 60), *common, *jb],
                            stdin=True)
                procs.append(recv)
                recv.wait_for("ready", 30.0)
                send = Proc("pjsua sender", [sys.executable, peer, "send", "--sip-port", str(send_sip),
                                             "--target", f"sip:recv@127.0.0.1:{recv_sip}", "--wav", str(src),
                                             "--timeout", str(duration_s + 30), "--tail", "0.2", *common])
                procs.append(send)
                sent = send.read_json(duration_s + 40.0, "result")
                code = send.wait(10.0)
                if code != 0 or sent.get("error"):  # the receiver's log says why it refused or failed the call
                    raise LiveError(f"{send.fail(str(sent.get('error') or f'exit status {code}'))}; the pjsua "
                                    f"receiver's last stderr lines: {recv.stderr_tail(3)}")
                # what is still in the channel and the jitter buffer comes out before the receiver stops
                time.sleep(relay.channel.max_delay_s(duration_s) + 0.6)
                recv.say("stop")
                got = recv.read_json(20.0, "statistics when asked to stop")
                recv.wait(10.0)
                if got.get("error"):
                    raise recv.fail(str(got["error"]))
            finally:
                relay.stop()
        if not raw.exists() or raw.stat().st_size <= 44:
            raise LiveError(f"pjsua receiver: wrote no audio to {raw} (did any packet reach it?)")
        audio, rate = sf.read(str(raw), dtype="float32", always_2d=True)
        jbuf, rx = got.get("jbuf", {}), got.get("rx", {})
        cols: dict[str, object] = {"client": "pjsua", "client_label": self.label, "client_codec": got.get("codec"),
                                   "client_ptime_ms": got.get("ptime")}
        for k, col in (("prefetch", "client_jb_prefetch_frames"), ("minPrefetch", "client_jb_min_prefetch_frames"),
                       ("maxPrefetch", "client_jb_max_prefetch_frames"), ("size", "client_jb_size_frames"),
                       ("avgDelayMsec", "client_jb_avg_delay_ms"), ("minDelayMsec", "client_jb_min_delay_ms"),
                       ("maxDelayMsec", "client_jb_max_delay_ms"), ("devDelayMsec", "client_jb_dev_delay_ms"),
                       ("lost", "client_jb_lost"), ("discard", "client_jb_discard"), ("empty", "client_jb_empty"),
                       ("frameSize", "client_jb_frame_bytes"), ("avgBurst", "client_jb_avg_burst")):
            cols[col] = float(jbuf[k]) if k in jbuf else math.nan
        for k in ("pkt", "loss", "dup", "reorder", "discard"):
            cols[f"client_rx_{k}"] = float(rx[k]) if k in rx else math.nan
        cols["client_rx_jitter_ms"] = rx["jitter_mean_us"] / 1000.0 if "jitter_mean_us" in rx else math.nan
        cols["client_tx_packets"] = sent.get("tx_pkt")
        before = sent.get("tx_before")
        return ClientRun(audio.mean(axis=1), int(rate), cols, None, search_s=4.0,
                         clip_first_index=int(before) if isinstance(before, int) else None)


def _free_even_port() -> int:
    """An even UDP port (RTP's convention) that is free now."""
    for _ in range(50):
        p = free_port()
        if p % 2 == 0:
            return p
    raise LiveError("pjsua client: found no free even UDP port on 127.0.0.1 in 50 tries")

