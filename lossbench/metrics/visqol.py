"""ViSQOL v3 (Google's Virtual Speech Quality Objective Listener), through ``visqol-python``.

``visqol-python`` 3.8.0 is a pure-Python port of ViSQOL v3.3.3 with its models in the wheel; it reproduces the
C++ conformance values (audio mode to 1e-13, speech mode within 0.003; ``tests/metrics/test_visqol.py`` checks
both against ``../shared/reference/visqol/``). Its inner loops are compiled by numba when numba imports
(``numba_accelerated`` says whether they are); the lattice speech mapper runs on ``ai-edge-litert``.

- ``visqol``: speech mode at 16 kHz with the deep-lattice mapper (the C++ default), MOS-LQO 1..5. Unlike
  PESQ, it does not floor at high loss: on one corpus clip with lost frames left silent, 0 / 5 / 15 / 30 % loss
  gave PESQ-WB 4.64 / 1.62 / 1.14 / 1.06 and ViSQOL 4.61 / 4.26 / 3.36 / 2.27 (issue #23's measurement).
- ``visqol_audio``: audio mode at 48 kHz with the default SVR model (music and full-band audio); a 16 kHz
  clip is upsampled first, so it judges the band both signals have.

Calls are serialised by a process-wide lock: numba's default ``workqueue`` threading layer aborts the process
when two threads run its parallel kernels at once (seen with 4 threads scoring ViSQOL on a Dask-like worker),
and the API objects are shared. Other metrics of other threads run meanwhile.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from lossbench.concurrency import locked_cache
from lossbench.metrics.common import MetricUnavailable, _check_pair, _resample

SPEECH_RATE, AUDIO_RATE = 16000, 48000


@locked_cache(4)
def _api(mode: str):
    import warnings

    logging.getLogger("visqol").setLevel(logging.ERROR)
    from visqol import VisqolApi

    api = VisqolApi()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "speech":
            api.create(mode="speech", use_lattice_model=True)
        else:
            api.create(mode="audio")
    return api


#: one ViSQOL measurement at a time per process (see the module docstring)
_SERIAL = threading.Lock()


def numba_accelerated() -> bool:
    """Whether visqol-python's compiled (numba) inner loops are the ones that run."""
    import visqol.numba_accel as na

    return bool(na._HAS_NUMBA)


def visqol_score(est: np.ndarray, ref: np.ndarray, sr: int, mode: str) -> float:
    """ViSQOL MOS-LQO of ``est`` against ``ref`` at ``sr`` as given (no resampling), ``mode`` speech or audio."""
    if mode not in ("speech", "audio"):
        raise ValueError(f"mode must be 'speech' or 'audio', got {mode!r}")
    # not _check_pair's truncation to the shorter signal: ViSQOL aligns the pair itself (the conformance
    # pairs differ in length, and cutting one changes the score)
    _check_pair(est, ref)
    est, ref = np.asarray(est, np.float64), np.asarray(ref, np.float64)
    if min(ref.size, est.size) < sr // 2:
        raise MetricUnavailable("too short for ViSQOL (needs >= 0.5 s)")
    try:
        with _SERIAL:
            return float(_api(mode).measure_from_arrays(ref.astype(np.float64), est.astype(np.float64), int(sr)).moslqo)
    except (ValueError, RuntimeError, IndexError) as e:
        raise MetricUnavailable(f"ViSQOL could not score this pair: {e}") from None


def visqol(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """ViSQOL speech mode (16 kHz, lattice mapper)."""
    if sr != SPEECH_RATE:
        est, ref, sr = _resample(np.asarray(est), sr, SPEECH_RATE), _resample(np.asarray(ref), sr, SPEECH_RATE), SPEECH_RATE
    return {"visqol": visqol_score(est, ref, sr, "speech")}


def visqol_audio(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """ViSQOL audio mode (48 kHz, SVR model)."""
    if sr != AUDIO_RATE:
        est, ref, sr = _resample(np.asarray(est), sr, AUDIO_RATE), _resample(np.asarray(ref), sr, AUDIO_RATE), AUDIO_RATE
    return {"visqol_audio": visqol_score(est, ref, sr, "audio")}
