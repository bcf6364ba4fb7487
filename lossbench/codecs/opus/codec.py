"""The ``opus`` codec backend (see the package docstring)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.codecs.fec import Depacketized
from lossbench.codecs.opus.bindings import (
    APPLICATIONS,
    FRAME_MS,
    GET_LOOKAHEAD,
    LIBS,
    NEURAL_CONCEALMENTS,
    OSCE,
    SAMPLE_RATES,
    SET_BITRATE,
    SET_COMPLEXITY,
    SET_DRED_DURATION,
    SET_DTX,
    SET_INBAND_FEC,
    SET_LSB_DEPTH,
    SET_PACKET_LOSS_PERC,
    SET_VBR,
    SET_VBR_CONSTRAINT,
    _Decoder,
    _DredParser,
    _Encoder,
    libopus,
    opus_version,
)
from lossbench.codecs.opus.packets import packet_dred_bytes, packet_has_lbrr
from lossbench.errors import ConfigError, choices


@CODECS.register("opus")
class Opus(FrameCodec):
    """Opus at 8–48 kHz mono, from the project's 1.5.2 build or the system's libopus.

    Args:
        bitrate: target bit/s (the ``kbps`` alias takes kbit/s).
        sample_rate_hz: 8000, 12000, 16000, 24000 or 48000.
        frame_ms: 10, 20, 40 or 60.
        vbr: variable bitrate (default on); ``cvbr`` constrains it.
        complexity: encoder complexity 0–10.
        application: voip, audio or lowdelay.
        fec: turn on in-band LBRR FEC (emitted only when ``loss_perc`` > 0).
        loss_perc: the packet-loss percentage the encoder expects (0–100); given
            to the encoder when ``fec`` or ``dred_ms`` is on.
        dtx: discontinuous transmission (silent frames are not sent).
        dred_ms: Deep REDundancy, 0 (off) or 10–1000 ms in 10 ms steps (1.5 build).
        osce: decoder enhancement, off, lace or nolace (1.5 build).
        lib: ``build`` (Opus 1.5.2 from ``make setup``) or ``system``.
        channels: 1, or 2 to code a stereo clip as a stereo stream (a sweep with ``stereo = true``); with two
            channels the concealment is Opus's own (``opus-plc``, ``opus-fec``; ``opus-deep-plc`` and
            ``opus-dred`` where this libopus runs them on stereo, checked when the codec is made).
    """

    name = "opus"
    facts = ("lbrr_fraction", "lbrr_present", "dred_fraction", "dred_kbps", "dtx_frames", "libopus",
             "lbrr_recovered_frames", "dred_recovered_frames", "dred_corrupt_packets")
    native_concealments: tuple[str, ...] = ("opus-plc", "opus-deep-plc", "opus-fec", "opus-dred")

    def __init__(
        self,
        bitrate: int | None = None,
        kbps: float | None = None,
        sample_rate_hz: int = 16000,
        frame_ms: float = 20.0,
        vbr: bool = True,
        cvbr: bool = False,
        complexity: int = 10,
        application: str = "voip",
        fec: bool = False,
        loss_perc: int = 10,
        dtx: bool = False,
        dred_ms: int = 0,
        osce: str = "off",
        lib: str = "build",
        channels: int = 1,
        **packet_kw: Any,
    ) -> None:
        super().__init__(**packet_kw)
        if channels not in (1, 2):
            raise ConfigError(f"opus: channels must be 1 or 2, got {channels!r}")
        self.channels = int(channels)
        if bitrate is not None and kbps is not None:
            raise ConfigError("opus: give bitrate (bit/s) or kbps, not both")
        br = int(round(kbps * 1000)) if kbps is not None else int(bitrate if bitrate is not None else 16000)
        if not 6000 <= br <= 510000:
            raise ConfigError(f"opus: bitrate must lie in [6000, 510000] bit/s, got {br}")
        if int(sample_rate_hz) not in SAMPLE_RATES:
            raise ConfigError(f"opus: sample_rate_hz must be one of {SAMPLE_RATES}, got {sample_rate_hz!r}")
        if float(frame_ms) not in FRAME_MS:
            raise ConfigError(f"opus: frame_ms must be one of 10, 20, 40, 60, got {frame_ms!r}")
        if not 0 <= int(complexity) <= 10:
            raise ConfigError(f"opus: complexity must lie in 0..10, got {complexity!r}")
        if application not in APPLICATIONS:
            raise ConfigError(f"opus: application must be one of {', '.join(APPLICATIONS)}, got {application!r}")
        if not 0 <= int(loss_perc) <= 100:
            raise ConfigError(f"opus: loss_perc must lie in 0..100, got {loss_perc!r}")
        if lib not in LIBS:
            raise ConfigError(f"opus: lib must be one of {choices(LIBS)}, got {lib!r}")
        if not isinstance(dred_ms, int) or isinstance(dred_ms, bool) or not (dred_ms == 0 or (
                10 <= dred_ms <= 1000 and dred_ms % 10 == 0)):
            raise ConfigError(f"opus: dred_ms must be 0 (off) or 10..1000 in steps of 10, got {dred_ms!r}")
        if osce not in OSCE:
            raise ConfigError(f"opus: osce must be one of {choices(OSCE)}, got {osce!r}")
        if lib == "system" and (dred_ms or osce != "off"):
            what = f"dred_ms={dred_ms}" if dred_ms else f"osce={osce}"
            raise ConfigError(f"opus: {what} needs the Opus 1.5 build (lib=build); the system's libopus has no "
                              "DRED or OSCE")
        self.bitrate = br
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_ms = float(frame_ms)
        self.frame_samples = int(self.sample_rate_hz * self.frame_ms / 1000)
        self.vbr, self.cvbr = bool(vbr), bool(cvbr)
        self.complexity = int(complexity)
        self.application = application
        self.fec = bool(fec)
        self.loss_perc = int(loss_perc)
        self.dtx = bool(dtx)
        self.dred_ms = int(dred_ms)
        self.osce = osce
        self.lib_name = lib
        self.lib = libopus(lib)
        self.version = opus_version(lib)
        self.delay_samples = self._new_encoder().get(GET_LOOKAHEAD)
        # what "native" means for this instance: no neural tools in the system's library, and OSCE's
        # decoder complexity always runs deep PLC
        if lib == "system":
            self.native_concealments = ("opus-plc", "opus-fec")
        elif osce != "off":
            self.native_concealments = NEURAL_CONCEALMENTS

    def check_concealment(self, concealment: str) -> str:
        if concealment in NEURAL_CONCEALMENTS and self.lib_name == "system":
            raise ConfigError(f"opus: concealment {concealment!r} needs the Opus 1.5 build (lib=build), "
                              f"not lib=system; valid here: {choices(self.concealments)}")
        if concealment in ("opus-plc", "opus-fec") and self.osce != "off":
            raise ConfigError(f"opus: osce={self.osce} runs the decoder at complexity {OSCE[self.osce]}, which also "
                              f"turns on deep PLC, so {concealment!r} (classic PLC) cannot go with it; use "
                              "opus-deep-plc or opus-dred")
        return super().check_concealment(concealment)

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"bitrate": self.bitrate, "sample_rate_hz": self.sample_rate_hz, "frame_ms": self.frame_ms}
        if not self.vbr or self.cvbr:
            p.update(vbr=self.vbr, cvbr=self.cvbr)
        if self.complexity != 10:
            p["complexity"] = self.complexity
        if self.application != "voip":
            p["application"] = self.application
        if self.fec:
            p["fec"] = True
        if self.dred_ms:
            p["dred_ms"] = self.dred_ms
        if self.fec or self.dred_ms:
            p["loss_perc"] = self.loss_perc
        if self.dtx:
            p["dtx"] = True
        if self.osce != "off":
            p["osce"] = self.osce
        if self.lib_name != "build":
            p["lib"] = self.lib_name
        if self.channels != 1:
            p["channels"] = self.channels
        return p

    def _new_encoder(self) -> _Encoder:
        enc = _Encoder(self.lib, self.sample_rate_hz, APPLICATIONS[self.application], self.channels)
        enc.ctl(SET_BITRATE, self.bitrate)
        enc.ctl(SET_VBR, int(self.vbr))
        enc.ctl(SET_VBR_CONSTRAINT, int(self.cvbr))
        enc.ctl(SET_COMPLEXITY, self.complexity)
        enc.ctl(SET_INBAND_FEC, int(self.fec))
        enc.ctl(SET_PACKET_LOSS_PERC, self.loss_perc if (self.fec or self.dred_ms) else 0)
        enc.ctl(SET_DTX, int(self.dtx))
        enc.ctl(SET_LSB_DEPTH, 16)  # our clips are 16-bit; as opus_demo sets it
        if self.dred_ms:
            enc.ctl(SET_DRED_DURATION, self.dred_ms // 10)
        return enc

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        enc = self._new_encoder()
        F = self.frame_samples
        out = []
        for i in range(0, samples.shape[0], F):
            pkt = enc.encode(samples[i : i + F])
            # with DTX, libopus marks frames not worth sending with payloads of <= 2 bytes
            out.append(b"" if self.dtx and len(pkt) <= 2 else pkt)
        return out, self.stream_facts(out)

    def stream_facts(self, frames: list[bytes]) -> dict[str, Any]:
        """What the packets really carry: LBRR and DRED read from the bytes, DTX frames, the library version."""
        sent = [f for f in frames if f]
        lbrr = [packet_has_lbrr(f) for f in sent]
        dred = [packet_dred_bytes(f) for f in sent]
        dur = max(len(frames), 1) * self.frame_ms / 1000.0
        return {
            "lbrr_fraction": float(np.mean(lbrr)) if lbrr else 0.0,
            "lbrr_present": bool(any(lbrr)),
            "dred_fraction": float(np.mean([d > 0 for d in dred])) if dred else 0.0,
            "dred_kbps": 8.0 * sum(dred) / dur / 1000.0,
            "dtx_frames": len(frames) - len(sent),
            "libopus": self.version,
        }

    def _decoder_complexity(self, concealment: str | None) -> int:
        if self.osce != "off":
            return OSCE[self.osce]
        return OSCE["off"] if concealment in NEURAL_CONCEALMENTS else 0

    def _valid(self, packet: bytes) -> bool:
        return self.lib.opus_packet_get_nb_samples(packet, len(packet), self.sample_rate_hz) > 0

    repairs_from_later_packets = True

    def decode_frames(self, frames, concealment, clock: Depacketized | None = None):
        """Decode as ``opus_demo`` does: a lost frame waits for the next packet, which may carry
        DRED (``opus-dred``) for the gap and LBRR (``opus-fec``, ``opus-dred``) for its last frame.

        With ``clock``, the wait keeps to the receiver clock: the next packet's LBRR or DRED repairs a lost frame
        only if that packet arrived by the lost frame's playout deadline; otherwise the frame is concealed as if
        the packet had not come, and the packet is decoded in its own turn."""
        sr, F = self.sample_rate_hz, self.frame_samples
        dec = _Decoder(self.lib, sr, self._decoder_complexity(concealment), self.channels)
        use_lbrr = concealment in ("opus-fec", "opus-dred")
        dred = _DredParser(self.lib) if concealment == "opus-dred" else None
        n = len(frames)
        out = np.zeros((n * F,) + ((self.channels,) if self.channels > 1 else ()), dtype=np.float32)
        bad = np.zeros(n, dtype=bool)
        info = {"lbrr_recovered_frames": 0, "dred_recovered_frames": 0, "dred_corrupt_packets": 0}
        pending: list[int] = []  # frames waiting for the next packet

        def put(i: int, y: np.ndarray | None) -> None:
            if y is not None and y.size:
                m = min(y.shape[0], F)
                out[i * F : i * F + m] = y[:m] / 32768.0

        def conceal() -> np.ndarray | None:
            if concealment is None:
                return None
            return dec.decode(None, dec.last_duration() or F)

        for i, fr in enumerate(frames):
            if fr is not None and len(fr) == 0:  # DTX: the decoder's own comfort-noise path
                pending.append(i)
                continue
            if fr is None or not self._valid(fr):  # missing, or a payload libopus cannot parse
                bad[i] = True
                pending.append(i)
                continue
            if pending and concealment is not None:
                k = len(pending)
                have_dred = 0
                if dred is not None:
                    r = dred.parse(fr, min(48000, k * (dec.last_duration() or F)), sr)
                    if r < 0:
                        info["dred_corrupt_packets"] += 1
                    have_dred = max(r, 0)
                if not use_lbrr:
                    lbrr = False
                elif hasattr(self.lib, "opus_packet_has_lbrr"):
                    lbrr = bool(self.lib.opus_packet_has_lbrr(fr, len(fr)))
                else:
                    lbrr = packet_has_lbrr(fr)
                for j, idx in enumerate(pending):
                    y = None
                    dur = dec.last_duration() or F
                    in_time = clock is None or clock.in_time(i, idx)  # packet i may repair frame idx
                    if in_time and j == k - 1 and lbrr:
                        y = dec.decode(fr, dur, fec=True)
                        info["lbrr_recovered_frames"] += y is not None
                    elif in_time and have_dred > 0 and dred is not None:
                        y = dec.dred_decode(dred.dred, (k - j) * dur, dur)
                        info["dred_recovered_frames"] += y is not None and (k - j) * dur <= have_dred
                    if y is None:
                        y = conceal()
                    put(idx, y)
            elif pending:
                for idx in pending:
                    if not bad[idx]:  # DTX frames are decoded even without a concealment
                        put(idx, dec.decode(None, dec.last_duration() or F))
            pending = []
            y = dec.decode(fr, 5760)
            if y is None:  # parsed but did not decode: conceal it
                bad[i] = True
                y = conceal()
            put(i, y)
        for idx in pending:  # lost at the end: no packet follows, so plain concealment
            if concealment is not None or not bad[idx]:
                put(idx, dec.decode(None, dec.last_duration() or F))
        return out, bad, info
