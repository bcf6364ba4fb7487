"""LPCNet features, the FARGAN vocoder and the deep-PLC feature predictor of Opus 1.5.2.

Thin, stateful wrappers over ``liblossbench_fargan.so`` (``fargan_shim.c``):

- :class:`FeatureAnalyzer`: 16 kHz PCM in, 20 features per 10 ms frame out
  (18 cepstral bands, pitch period, pitch correlation), streaming;
- :class:`FarganSynth`: features in, 160 samples per frame out, started the
  way ``dnn/fargan_demo.c`` starts it (``fargan_cont`` on the first five
  frames over silence), streaming;
- :class:`PlcPredictor`: the deep-PLC network that predicts the next frame's
  features from the past (``dnn/plc_data.c``).

:func:`analyze` and :func:`synthesize` are the offline forms; streaming in
any chunk sizes gives the same numbers (tested).
"""

from __future__ import annotations

import numpy as np

from lossbench.native import fargan_lib

NB_FEATURES = 20
FRAME = 160  # samples per 10 ms feature frame at 16 kHz
CONT_FRAMES = 5  # frames fargan_cont consumes before synthesis starts
CONT_SAMPLES = 320
PLC_INPUT = 57  # 36 Burg cepstral values + 20 features + 1 flag
#: FARGAN's first output sample corresponds to this input sample (analysis + warm-up), measured
#: by cross-correlation on speech and checked in the tests
SYNTH_ADVANCE = 556


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


class FeatureAnalyzer:
    """Streaming LPCNet feature analysis (``lpcnet_compute_single_frame_features_float``)."""

    def __init__(self) -> None:
        self._lib = fargan_lib()
        self._st = self._lib.lb_analysis_create()
        if not self._st:
            raise MemoryError("lpcnet_encoder_create failed")
        self._rest = np.zeros(0, dtype=np.float32)

    def push(self, pcm: np.ndarray) -> np.ndarray:
        """Features (n, 20) of every whole frame completed by ``pcm`` (floats in [-1, 1])."""
        x = np.concatenate([self._rest, _f32(pcm) * 32768.0])
        n = x.size // FRAME
        self._rest = x[n * FRAME :].copy()
        out = np.zeros((n, NB_FEATURES), dtype=np.float32)
        if n:
            buf = _f32(x[: n * FRAME])
            self._lib.lb_analysis_frames(self._st, buf.ctypes.data, n, out.ctypes.data)
        return out

    def __del__(self) -> None:
        if getattr(self, "_st", None):
            self._lib.lb_analysis_destroy(self._st)
            self._st = None


class FarganSynth:
    """Streaming FARGAN: the first five feature frames start it, each later frame gives 160 samples."""

    def __init__(self) -> None:
        self._lib = fargan_lib()
        self._st = self._lib.lb_fargan_create()
        if not self._st:
            raise MemoryError("fargan_init failed")
        self._head: list[np.ndarray] = []

    @property
    def started(self) -> bool:
        return len(self._head) >= CONT_FRAMES

    def push(self, features: np.ndarray) -> np.ndarray:
        """Samples (float32 in about [-1, 1]) for ``features`` (n, 20); none for the first five frames."""
        f = _f32(np.atleast_2d(features))
        if not self.started:
            need = CONT_FRAMES - len(self._head)
            self._head.extend(f[:need])
            f = f[need:]
            if self.started:
                head = _f32(np.stack(self._head))
                zeros = np.zeros(CONT_SAMPLES, dtype=np.float32)
                self._lib.lb_fargan_cont(self._st, zeros.ctypes.data, head.ctypes.data)
        n = f.shape[0]
        out = np.zeros(n * FRAME, dtype=np.float32)
        if n:
            f = _f32(f)
            self._lib.lb_fargan_frames(self._st, f.ctypes.data, n, out.ctypes.data)
        return out

    def __del__(self) -> None:
        if getattr(self, "_st", None):
            self._lib.lb_fargan_destroy(self._st)
            self._st = None


class PlcPredictor:
    """The deep-PLC feature predictor: feed each frame, get the next frame's predicted features."""

    def __init__(self) -> None:
        self._lib = fargan_lib()
        self._st = self._lib.lb_plc_create()
        if not self._st:
            raise MemoryError("init_plcmodel failed")
        self._out = np.zeros(NB_FEATURES, dtype=np.float32)

    def step(self, inp: np.ndarray) -> np.ndarray:
        x = _f32(inp)
        if x.shape != (PLC_INPUT,):
            raise ValueError(f"PLC input must have {PLC_INPUT} values, got shape {x.shape}")
        self._lib.lb_plc_step(self._st, x.ctypes.data, self._out.ctypes.data)
        return self._out.copy()

    def received(self, features: np.ndarray, burg: np.ndarray) -> np.ndarray:
        """Update with a received frame's features and its 36 Burg cepstral values; returns the prediction."""
        return self.step(np.concatenate([_f32(burg), _f32(features), np.ones(1, np.float32)]))

    def lost(self) -> np.ndarray:
        """Predict the features of a lost frame (all-zero input, as upstream)."""
        return self.step(np.zeros(PLC_INPUT, dtype=np.float32))

    def __del__(self) -> None:
        if getattr(self, "_st", None):
            self._lib.lb_plc_destroy(self._st)
            self._st = None


def burg_cepstrum(pcm_frame: np.ndarray) -> np.ndarray:
    """The 36 Burg cepstral values the PLC analysis computes on one 160-sample frame in [-1, 1]."""
    x = _f32(pcm_frame) * 32768.0
    if x.shape != (FRAME,):
        raise ValueError(f"a frame has {FRAME} samples, got shape {x.shape}")
    out = np.zeros(36, dtype=np.float32)
    fargan_lib().lb_burg_cepstrum(_f32(x).ctypes.data, out.ctypes.data)
    return out


def analyze(pcm: np.ndarray) -> np.ndarray:
    """Features (n_frames, 20) of 16 kHz PCM in [-1, 1] (a partial last frame is dropped)."""
    return FeatureAnalyzer().push(pcm)


def synthesize(features: np.ndarray) -> np.ndarray:
    """FARGAN's waveform for features (n, 20): (n - 5) * 160 samples, as ``fargan_demo`` writes."""
    return FarganSynth().push(features)


def vocode(pcm: np.ndarray) -> np.ndarray:
    """Analysis then synthesis, aligned with ``pcm`` (same length; the unquantised-feature ceiling)."""
    x = _f32(pcm)
    pad = np.concatenate([np.zeros(4 * FRAME, np.float32), x, np.zeros(2 * FRAME, np.float32)])
    y = synthesize(analyze(pad))
    # y[j] follows pad[j + SYNTH_ADVANCE] = x[j + SYNTH_ADVANCE - 4 * FRAME]
    d = 4 * FRAME - SYNTH_ADVANCE
    out = np.zeros_like(x)
    seg = y[d : d + x.size]
    out[: seg.size] = seg
    return out
