"""libopus through ctypes: loading the project's 1.5.2 build or the system's, and the encoder, decoder
and DRED parser handles (each a thin class over the C API, freed with the object)."""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

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
    def __init__(self, lib: ctypes.CDLL, sr: int, application: int, channels: int = 1) -> None:
        err = ctypes.c_int(0)
        self.lib = lib
        self.channels = channels
        self.st = lib.opus_encoder_create(sr, channels, application, ctypes.byref(err))
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
        """One frame: float32[frame] (mono) or float32[frame, 2], interleaved as libopus wants it."""
        buf = ctypes.create_string_buffer(4000)
        x = np.ascontiguousarray(pcm, dtype=np.float32)
        n = self.lib.opus_encode_float(self.st, x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), x.shape[0], buf,
                                       4000)
        if n < 0:
            raise CodecError(f"opus_encode_float failed: {self.lib.opus_strerror(n).decode()}")
        return buf.raw[:n]

    def __del__(self) -> None:
        if getattr(self, "st", None):
            self.lib.opus_encoder_destroy(self.st)
            self.st = None


class _Decoder:
    """An Opus decoder producing 16-bit samples, as ``opus_demo`` writes them (``opus_decode``)."""

    def __init__(self, lib: ctypes.CDLL, sr: int, complexity: int = 0, channels: int = 1) -> None:
        err = ctypes.c_int(0)
        self.lib = lib
        self.sr = sr
        self.channels = channels
        self.st = lib.opus_decoder_create(sr, channels, ctypes.byref(err))
        if err.value != OPUS_OK or not self.st:
            raise CodecError(f"opus_decoder_create failed: {lib.opus_strerror(err.value).decode()}")
        if complexity:
            r = lib.opus_decoder_ctl(ctypes.c_void_p(self.st), ctypes.c_int(SET_COMPLEXITY), ctypes.c_int(complexity))
            if r != OPUS_OK:
                raise CodecError(f"opus decoder complexity {complexity} refused: {lib.opus_strerror(r).decode()}")
        self.buf = np.zeros(5760 * channels, dtype=np.int16)  # 120 ms at 48 kHz

    def last_duration(self) -> int:
        v = ctypes.c_int(0)
        self.lib.opus_decoder_ctl(ctypes.c_void_p(self.st), ctypes.c_int(GET_LAST_PACKET_DURATION), ctypes.byref(v))
        return v.value

    def decode(self, data: bytes | None, max_samples: int, fec: bool = False) -> np.ndarray | None:
        """int16 samples (as many as the packet or PLC gives; [n, channels] when stereo), or None if libopus
        rejects the call."""
        n = self.lib.opus_decode(self.st, data if data else None, len(data) if data else 0, self.buf.ctypes.data,
                                 max_samples, 1 if fec else 0)
        return None if n < 0 else self._out(n)

    def _out(self, n: int) -> np.ndarray:
        c = self.channels
        return self.buf[:n].copy() if c == 1 else self.buf[: n * c].reshape(n, c).copy()

    def dred_decode(self, dred: ctypes.c_void_p, offset: int, n: int) -> np.ndarray | None:
        r = self.lib.opus_decoder_dred_decode(self.st, dred, offset, self.buf.ctypes.data, n)
        return None if r < 0 else self._out(r)

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
