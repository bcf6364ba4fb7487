"""Opus through libopus (ctypes): the project's Opus 1.5.2 build by default, or the system's.

``lib=build`` (the default) runs the Opus 1.5.2 that ``make setup`` builds from
Debian's source package, with its neural tools; ``lib=system`` runs the
system's libopus (1.3.1 on Debian 12: classic PLC and LBRR only), so the two
versions can be compared. Every stream records the version string it ran.

Concealments, decoded in the order of the reference decoder ``src/opus_demo.c``
(a lost frame is decoded when the next packet arrives):

- ``opus-plc``: classic PLC (decoder complexity 0);
- ``opus-deep-plc``: neural PLC (complexity 5; deep PLC's feature predictor
  and FARGAN fill the gap), 1.5 build only;
- ``opus-fec``: LBRR from the next packet for the frame just before it where
  present, else classic PLC;
- ``opus-dred``: on the first packet after a gap, DRED (``opus_dred_parse``)
  rebuilds the missing frames it covers, LBRR the frame just before the packet,
  deep PLC the rest; 1.5 build only.

``osce=lace|nolace`` turns on the decoder's speech enhancement (complexity 6
or 7, which also selects deep PLC), so it goes with ``opus-deep-plc`` or
``opus-dred``. LBRR and DRED only spend bits when the encoder expects loss:
``fec=1`` and ``dred_ms`` need ``loss_perc`` > 0 (10 by default).

libopus emits LBRR only above per-bandwidth bitrate thresholds, so each
stream records what its packets really carry: the SILK layer's LBRR flag is
read with a minimal RFC 6716 range decoder (:func:`packet_has_lbrr`), and the
DRED extension's bytes from the packet padding (:func:`packet_dred_bytes`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import numpy as np

from lossbench.codecs.base import CODECS, Codec
from lossbench.errors import CodecError, ConfigError, choices

OPUS_OK = 0
APPLICATIONS = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
SET_BITRATE, SET_VBR, SET_COMPLEXITY, SET_INBAND_FEC = 4002, 4006, 4010, 4012
SET_PACKET_LOSS_PERC, SET_DTX, SET_VBR_CONSTRAINT, GET_LOOKAHEAD = 4014, 4016, 4020, 4027
SET_LSB_DEPTH, GET_LAST_PACKET_DURATION, SET_DRED_DURATION = 4036, 4039, 4050
SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
FRAME_MS = (10.0, 20.0, 40.0, 60.0)
LIBS = ("build", "system")
OSCE = {"off": 5, "lace": 6, "nolace": 7}  # decoder complexity for the neural decoders
#: concealments that need the Opus 1.5 build
NEURAL_CONCEALMENTS = ("opus-deep-plc", "opus-dred")
DRED_EXTENSION_ID = 126

_LIBS: dict[str, ctypes.CDLL] = {}


def libopus(which: str = "build") -> ctypes.CDLL:
    """Load libopus once: ``build`` (the project's 1.5.2, ``make setup``) or ``system``."""
    lib = _LIBS.get(which)
    if lib is not None:
        return lib
    if which == "build":
        from lossbench.native import libopus_path

        path = str(libopus_path())
    elif which == "system":
        path = _system_libopus()
    else:
        raise ConfigError(f"opus: lib must be one of {choices(LIBS)}, got {which!r}")
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        if which == "system":
            raise CodecError("the system's libopus is not installed: apt-get install libopus0 "
                             "(make setup does this as root)") from None
        raise CodecError(f"cannot load {path}; run `make setup` to rebuild Opus 1.5.2") from None
    c_int, c_void_p, i32 = ctypes.c_int, ctypes.c_void_p, ctypes.c_int32
    lib.opus_encoder_create.restype = c_void_p
    lib.opus_encoder_create.argtypes = [i32, c_int, c_int, ctypes.POINTER(c_int)]
    lib.opus_decoder_create.restype = c_void_p
    lib.opus_decoder_create.argtypes = [i32, c_int, ctypes.POINTER(c_int)]
    lib.opus_encode_float.restype = i32
    lib.opus_encode_float.argtypes = [c_void_p, ctypes.POINTER(ctypes.c_float), c_int, ctypes.c_char_p, i32]
    lib.opus_decode.restype = c_int
    lib.opus_decode.argtypes = [c_void_p, ctypes.c_char_p, i32, c_void_p, c_int, c_int]
    lib.opus_packet_get_nb_samples.restype = c_int
    lib.opus_packet_get_nb_samples.argtypes = [ctypes.c_char_p, i32, i32]
    lib.opus_encoder_destroy.argtypes = [c_void_p]
    lib.opus_decoder_destroy.argtypes = [c_void_p]
    lib.opus_encoder_ctl.restype = c_int
    lib.opus_decoder_ctl.restype = c_int
    lib.opus_get_version_string.restype = ctypes.c_char_p
    lib.opus_strerror.restype = ctypes.c_char_p
    if hasattr(lib, "opus_dred_parse"):
        lib.opus_dred_decoder_create.restype = c_void_p
        lib.opus_dred_decoder_create.argtypes = [ctypes.POINTER(c_int)]
        lib.opus_dred_alloc.restype = c_void_p
        lib.opus_dred_alloc.argtypes = [ctypes.POINTER(c_int)]
        lib.opus_dred_decoder_destroy.argtypes = [c_void_p]
        lib.opus_dred_free.argtypes = [c_void_p]
        lib.opus_dred_parse.restype = c_int
        lib.opus_dred_parse.argtypes = [c_void_p, c_void_p, ctypes.c_char_p, i32, i32, i32, ctypes.POINTER(c_int), c_int]
        lib.opus_decoder_dred_decode.restype = c_int
        lib.opus_decoder_dred_decode.argtypes = [c_void_p, c_void_p, i32, c_void_p, i32]
        lib.opus_packet_has_lbrr.restype = c_int
        lib.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, i32]
    _LIBS[which] = lib
    return lib


def _system_libopus() -> str:
    """The system's libopus by absolute path: a bare ``libopus.so.0`` would resolve to the 1.5
    build once that is loaded, as the dynamic loader matches an already loaded soname."""
    import subprocess

    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if line.strip().startswith("libopus.so.0") and "=>" in line:
            return line.split("=>", 1)[1].strip()
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        p = f"{d}/libopus.so.0"
        try:
            open(p, "rb").close()
            return p
        except OSError:
            continue
    raise CodecError("the system's libopus is not installed: apt-get install libopus0 (make setup does this as root)")


def opus_version(which: str = "build") -> str:
    return libopus(which).opus_get_version_string().decode()


class _Encoder:
    def __init__(self, lib: ctypes.CDLL, sr: int, application: int) -> None:
        err = ctypes.c_int(0)
        self.lib = lib
        self.st = lib.opus_encoder_create(sr, 1, application, ctypes.byref(err))
        if err.value != OPUS_OK or not self.st:
            raise CodecError(f"opus_encoder_create failed: {lib.opus_strerror(err.value).decode()}")

    def ctl(self, request: int, value: int) -> None:
        r = self.lib.opus_encoder_ctl(ctypes.c_void_p(self.st), ctypes.c_int(request), ctypes.c_int(value))
        if r != OPUS_OK:
            raise CodecError(f"opus_encoder_ctl({request}, {value}) failed: {self.lib.opus_strerror(r).decode()}")

    def get(self, request: int) -> int:
        v = ctypes.c_int(0)
        self.lib.opus_encoder_ctl(ctypes.c_void_p(self.st), ctypes.c_int(request), ctypes.byref(v))
        return v.value

    def encode(self, pcm: np.ndarray) -> bytes:
        buf = ctypes.create_string_buffer(4000)
        x = np.ascontiguousarray(pcm, dtype=np.float32)
        n = self.lib.opus_encode_float(self.st, x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), x.size, buf, 4000)
        if n < 0:
            raise CodecError(f"opus_encode_float failed: {self.lib.opus_strerror(n).decode()}")
        return buf.raw[:n]

    def __del__(self) -> None:
        if getattr(self, "st", None):
            self.lib.opus_encoder_destroy(self.st)
            self.st = None


class _Decoder:
    """An Opus decoder producing 16-bit samples, as ``opus_demo`` writes them (``opus_decode``)."""

    def __init__(self, lib: ctypes.CDLL, sr: int, complexity: int = 0) -> None:
        err = ctypes.c_int(0)
        self.lib = lib
        self.sr = sr
        self.st = lib.opus_decoder_create(sr, 1, ctypes.byref(err))
        if err.value != OPUS_OK or not self.st:
            raise CodecError(f"opus_decoder_create failed: {lib.opus_strerror(err.value).decode()}")
        if complexity:
            r = lib.opus_decoder_ctl(ctypes.c_void_p(self.st), ctypes.c_int(SET_COMPLEXITY), ctypes.c_int(complexity))
            if r != OPUS_OK:
                raise CodecError(f"opus decoder complexity {complexity} refused: {lib.opus_strerror(r).decode()}")
        self.buf = np.zeros(5760, dtype=np.int16)  # 120 ms at 48 kHz

    def last_duration(self) -> int:
        v = ctypes.c_int(0)
        self.lib.opus_decoder_ctl(ctypes.c_void_p(self.st), ctypes.c_int(GET_LAST_PACKET_DURATION), ctypes.byref(v))
        return v.value

    def decode(self, data: bytes | None, max_samples: int, fec: bool = False) -> np.ndarray | None:
        """int16 samples (as many as the packet or PLC gives), or None if libopus rejects the call."""
        n = self.lib.opus_decode(self.st, data if data else None, len(data) if data else 0, self.buf.ctypes.data,
                                 max_samples, 1 if fec else 0)
        return None if n < 0 else self.buf[:n].copy()

    def dred_decode(self, dred: ctypes.c_void_p, offset: int, n: int) -> np.ndarray | None:
        r = self.lib.opus_decoder_dred_decode(self.st, dred, offset, self.buf.ctypes.data, n)
        return None if r < 0 else self.buf[:r].copy()

    def __del__(self) -> None:
        if getattr(self, "st", None):
            self.lib.opus_decoder_destroy(self.st)
            self.st = None


class _DredParser:
    """An ``OpusDREDDecoder`` plus the ``OpusDRED`` it fills (Opus 1.5)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        err = ctypes.c_int(0)
        self.lib = lib
        self.dec = lib.opus_dred_decoder_create(ctypes.byref(err))
        if err.value != OPUS_OK or not self.dec:
            raise CodecError(f"opus_dred_decoder_create failed: {lib.opus_strerror(err.value).decode()}")
        self.dred = lib.opus_dred_alloc(ctypes.byref(err))
        if err.value != OPUS_OK or not self.dred:
            raise CodecError(f"opus_dred_alloc failed: {lib.opus_strerror(err.value).decode()}")

    def parse(self, data: bytes, max_samples: int, sr: int) -> int:
        """Samples of DRED data available (0 when none); negative on a corrupt extension."""
        end = ctypes.c_int(0)
        return self.lib.opus_dred_parse(self.dec, self.dred, data, len(data), max_samples, sr, ctypes.byref(end), 0)

    def __del__(self) -> None:
        if getattr(self, "dred", None):
            self.lib.opus_dred_free(self.dred)
            self.dred = None
        if getattr(self, "dec", None):
            self.lib.opus_dred_decoder_destroy(self.dec)
            self.dec = None


# --------------------------------------------------------------------------- LBRR detection


class _RangeDecoder:
    """The start of RFC 6716's range decoder: enough to read SILK header flags."""

    def __init__(self, data: bytes) -> None:
        self.buf = data
        self.pos = 0
        b0 = self._byte()
        self.rem = b0
        self.val = 127 - (b0 >> 1)
        self.rng = 128
        self._normalize()

    def _byte(self) -> int:
        if self.pos < len(self.buf):
            b = self.buf[self.pos]
            self.pos += 1
            return b
        return 0

    def _normalize(self) -> None:
        while self.rng <= 1 << 23:
            self.rng <<= 8
            b = self._byte()
            sym = ((self.rem << 8) | b) >> 1
            self.rem = b
            self.val = ((self.val << 8) + (255 & ~sym)) & 0x7FFFFFFF

    def bit_logp(self, logp: int) -> int:
        r = self.rng
        d = self.val
        s = r >> logp
        ret = 1 if d < s else 0
        if not ret:
            self.val = d - s
        self.rng = s if ret else r - s
        self._normalize()
        return ret


def packet_has_lbrr(packet: bytes) -> bool:
    """True if the first Opus frame of ``packet`` carries SILK LBRR (in-band FEC) data.

    Reads the TOC byte (RFC 6716 §3.1); CELT-only packets carry none. For
    SILK and hybrid frames the range decoder yields one VAD flag per 20 ms
    SILK frame and then the LBRR flag (§4.2.3), each a 1/2-probability bit.
    """
    if len(packet) < 2:
        return False
    toc = packet[0]
    config = toc >> 3
    if config >= 16:  # CELT-only
        return False
    stereo = bool(toc & 0x04)
    code = toc & 0x03
    frame_ms = (10, 20, 40, 60)[config & 3] if config < 12 else (10, 20)[config & 1]
    data = packet[1:]
    if code == 1:
        data = data[: len(data) // 2]
    elif code == 2:
        if not data:
            return False
        n = data[0]
        hdr = 1
        if n >= 252:
            if len(data) < 2:
                return False
            n += 4 * data[1]
            hdr = 2
        data = data[hdr : hdr + n]
    elif code == 3:  # frame count and padding (Opus 1.5 puts its extensions, DRED among them, there)
        if not data:
            return False
        vbr, padded, count = bool(data[0] & 0x80), bool(data[0] & 0x40), data[0] & 0x3F
        pos, pad = 1, 0
        while padded:
            if pos >= len(data):
                return False
            b = data[pos]
            pos += 1
            pad += 254 if b == 255 else b
            padded = b == 255
        end = len(data) - pad
        if count < 1 or end <= pos:
            return False
        if vbr and count > 1:  # the first frame's length is coded
            n = data[pos]
            hdr = 1
            if n >= 252:
                if pos + 1 >= len(data):
                    return False
                n += 4 * data[pos + 1]
                hdr = 2
            data = data[pos + hdr : pos + hdr + n]
        else:
            data = data[pos:end][: (end - pos) // count]
    if not data:
        return False
    n_silk = max(1, frame_ms // 20)
    rd = _RangeDecoder(data)
    lbrr = False
    for _ in range(2 if stereo else 1):
        for _ in range(n_silk):
            rd.bit_logp(1)  # VAD flag
        lbrr |= bool(rd.bit_logp(1))
    return lbrr


def _padding(packet: bytes) -> bytes:
    """The padding of a code-3 Opus packet (RFC 6716 §3.2.5), where Opus 1.5 carries extensions."""
    if len(packet) < 2 or packet[0] & 0x03 != 3:
        return b""
    if not packet[1] & 0x40:
        return b""
    pos, pad = 2, 0
    while True:
        if pos >= len(packet):
            return b""
        b = packet[pos]
        pos += 1
        pad += 254 if b == 255 else b
        if b != 255:
            break
    if pad > len(packet) - pos:
        return b""
    return packet[len(packet) - pad:] if pad else b""


def packet_dred_bytes(packet: bytes) -> int:
    """Bytes of the DRED extension (id 126, header included) in an Opus 1.5 packet; 0 if none.

    Walks the padding extensions as ``src/extensions.c`` does; a malformed
    extension area counts as no DRED.
    """
    data = _padding(packet)
    pos, n = 0, len(data)
    while pos < n:
        start = pos
        ext_id, long = data[pos] >> 1, data[pos] & 1
        if ext_id == 0 and long == 1:  # padding separator
            pos += 1
            continue
        if 0 < ext_id < 32:  # short extension: 0 or 1 byte of data
            pos += 1 + long
            if pos > n:
                return 0
            continue
        if ext_id == 0:  # plain padding to the end
            return 0
        if not long:  # the last extension takes the rest
            return n - start if ext_id == DRED_EXTENSION_ID else 0
        size = 0
        pos += 1
        while True:
            if pos >= n:
                return 0
            b = data[pos]
            pos += 1
            size += b
            if b != 255:
                break
        pos += size
        if pos > n:
            return 0
        if ext_id == DRED_EXTENSION_ID:
            return pos - start
    return 0


# --------------------------------------------------------------------------- the codec


@CODECS.register("opus")
class Opus(Codec):
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
    """

    name = "opus"
    native_concealments = ("opus-plc", "opus-deep-plc", "opus-fec", "opus-dred")

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
        **packet_kw: Any,
    ) -> None:
        super().__init__(**packet_kw)
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
        self._last_info: dict[str, Any] = {}
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
        return p

    def _new_encoder(self) -> _Encoder:
        enc = _Encoder(self.lib, self.sample_rate_hz, APPLICATIONS[self.application])
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

    def encode_frames(self, samples: np.ndarray) -> list[bytes]:
        enc = self._new_encoder()
        F = self.frame_samples
        out = []
        for i in range(0, samples.size, F):
            pkt = enc.encode(samples[i : i + F])
            # with DTX, libopus marks frames not worth sending with payloads of <= 2 bytes
            out.append(b"" if self.dtx and len(pkt) <= 2 else pkt)
        return out

    def stream_meta(self, frames: list[bytes]) -> dict[str, Any]:
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

    def decode_frames(self, frames, concealment):
        """Decode as ``opus_demo`` does: a lost frame waits for the next packet, which may carry
        DRED (``opus-dred``) for the gap and LBRR (``opus-fec``, ``opus-dred``) for its last frame."""
        sr, F = self.sample_rate_hz, self.frame_samples
        dec = _Decoder(self.lib, sr, self._decoder_complexity(concealment))
        use_lbrr = concealment in ("opus-fec", "opus-dred")
        dred = _DredParser(self.lib) if concealment == "opus-dred" else None
        n = len(frames)
        out = np.zeros(n * F, dtype=np.float32)
        bad = np.zeros(n, dtype=bool)
        info = {"lbrr_recovered_frames": 0, "dred_recovered_frames": 0, "dred_corrupt_packets": 0}
        pending: list[int] = []  # frames waiting for the next packet

        def put(i: int, y: np.ndarray | None) -> None:
            if y is not None and y.size:
                m = min(y.size, F)
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
                    if j == k - 1 and lbrr:
                        y = dec.decode(fr, dur, fec=True)
                        info["lbrr_recovered_frames"] += y is not None
                    elif have_dred > 0:
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
        self._last_info = info
        return out, bad

    def decode_info(self) -> dict[str, Any]:
        return dict(self._last_info)
