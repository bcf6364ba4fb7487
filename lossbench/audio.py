"""Audio I/O: load, save, resample and mix down, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossbench.core import Clip
from lossbench.errors import AudioError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")


def resample(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample a float signal, mono or (n, channels), with soxr (very high quality)."""
    if from_hz == to_hz:
        return np.asarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), from_hz, to_hz, quality="VHQ").astype(np.float32)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels of a (n, channels) array."""
    return x.mean(axis=1) if x.ndim == 2 else x


def load_audio(path: str | Path, sample_rate_hz: int | None = None, clip_id: str | None = None,
               stereo: bool = False) -> Clip:
    """Load an audio file as a mono :class:`Clip` (``stereo``: a two-channel file keeps its channels).

    Args:
        path: wav/flac/ogg/... file.
        sample_rate_hz: resample to this rate if given (the original rate is
            recorded in ``clip.meta["original_rate_hz"]``).
        clip_id: defaults to the file stem.
    Raises:
        AudioError: unreadable or empty file (the message names the path).
    """
    import soundfile as sf

    p = Path(path)
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=False)
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError...)
        raise AudioError(f"{p}: cannot read audio: {exc}") from None
    if data.size == 0:
        raise AudioError(f"{p}: the file holds no samples")
    meta: dict[str, object] = {"source": str(p), "original_rate_hz": int(sr)}
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim == 2 and not (stereo and data.shape[1] == 2):
        meta["mixed_down_from_channels"] = int(data.shape[1])
        data = to_mono(data)
    if sample_rate_hz is not None and sr != sample_rate_hz:
        data = resample(data, sr, sample_rate_hz)
        meta["resampled"] = True
        sr = sample_rate_hz
    data = np.clip(data, -1.0, 1.0)
    return Clip(clip_id or p.stem, data, int(sr), meta=meta)


def save_audio(path: str | Path, samples: np.ndarray, sample_rate_hz: int) -> Path:
    """Write mono float audio as 16-bit WAV or FLAC (by extension)."""
    import soundfile as sf

    from lossbench.errors import writing

    p = Path(path)
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    with writing(p):
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            sf.write(str(p), x, int(sample_rate_hz), subtype="PCM_16")
        except sf.LibsndfileError as exc:  # libsndfile reports a failed open as its own error type
            raise OSError(str(exc)) from exc
    return p


def to_int16(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> int16 with rounding and clipping."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def from_int16(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32) / 32768.0).astype(np.float32)
