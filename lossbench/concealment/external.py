"""Concealment models a user brings, over the Deep PLC Challenge's interface.

The challenge's models read a lossy WAV, in which every lost 20 ms frame is zeroed, and a loss file with one
``0`` or ``1`` per 20 ms frame (1 = lost), and write the concealed WAV of the same length. Two ways to plug one in:

- ``cmd:run="CMD {lossy} {mask} {out}"`` runs a command (a model's own script, another Python, a container)
  in a fresh temporary folder, with ``timeout_s``, without a shell unless ``shell=1``; ``{rate}`` is the sample
  rate in Hz. Failures are errors that name the command, its exit status and the end of its stderr
  (:mod:`lossbench.external`).
- ``py:fn=package.module:function`` calls ``function(lossy, mask, sample_rate_hz)`` in the process, for a model
  that stays loaded: ``lossy`` is float32 mono audio with the lost frames zeroed, ``mask`` a bool array with one
  entry per ``frame_ms`` frame (True = lost); it returns the concealed float audio of the same length.

Both work with any one-channel codec, as the built-in waveform strategies do: the codec decodes what arrived, the
frames it could not decode are zeroed, and the model's output is what the listener hears (all of it: a model may
also smooth the audio around a gap). ``frame_ms`` (default 20, the challenge's) is the mask's frame; a mask frame
is lost when any of its samples belongs to a lost codec frame. ``sample_rate_hz`` (default 16000, the challenge's
rate; 0: the codec's own) is the rate the model works at: other audio is resampled to it and back. An output of
the wrong length, rate or channel count is an error naming what was expected. With nothing lost the model is not
run, as for every strategy.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.concealment.waveform import CONCEALMENT_MODELS, Concealment
from lossbench.errors import CodecError, ConfigError
from lossbench.external import check_template, run_command

FIELDS = ("lossy", "mask", "out", "rate")


class ModelConcealment(Concealment):
    """The challenge's contract: lossy audio and a frame mask in, concealed audio of the same length out."""

    def __init__(self, frame_ms: float = 20.0, sample_rate_hz: int = 16000) -> None:
        if not 0 < frame_ms <= 1000:
            raise ConfigError(f"{self.name}: frame_ms must lie in (0, 1000] ms, got {frame_ms!r}")
        if int(sample_rate_hz) != sample_rate_hz or not (sample_rate_hz == 0 or 1000 <= sample_rate_hz <= 384_000):
            raise ConfigError(f"{self.name}: sample_rate_hz must be 0 (the codec's rate) or an integer rate in "
                              f"1000..384000 Hz, got {sample_rate_hz!r}")
        self.frame_ms, self.sample_rate_hz = float(frame_ms), int(sample_rate_hz)

    def _fill(self, out: np.ndarray, a: int, b: int, frame_samples: int, sr: int) -> None:  # pragma: no cover
        raise AssertionError("a model conceals the whole signal at once")

    def conceal(self, audio: np.ndarray, missing: np.ndarray, frame_samples: int, sample_rate_hz: int) -> np.ndarray:
        from lossbench.audio import resample

        x = np.array(audio, dtype=np.float32)
        missing = np.asarray(missing, dtype=bool)
        if not missing.any():
            return x
        lost = np.zeros(x.size, bool)
        for i in np.flatnonzero(missing):
            lost[i * frame_samples : (i + 1) * frame_samples] = True
        x[lost[: x.size]] = 0.0
        rate = self.sample_rate_hz or sample_rate_hz
        y = x
        if rate != sample_rate_hz:  # resampled, the lost frames are zeroed again (the filter rings into them)
            y = resample(x, sample_rate_hz, rate)
            f = rate / sample_rate_hz
            for i in np.flatnonzero(missing):
                y[int(round(i * frame_samples * f)) : int(round((i + 1) * frame_samples * f))] = 0.0
        step = self.frame_ms * sample_rate_hz / 1000.0
        n_mask = int(np.ceil(x.size / step - 1e-9))
        mask = np.array([lost[int(round(k * step)) : int(round((k + 1) * step))].any() for k in range(n_mask)])
        z = np.asarray(self._model(y, mask, rate), dtype=np.float32)
        if z.ndim != 1 or z.size != y.size:
            raise CodecError(f"{self.describe()}: the model returned {z.shape} samples; expected {y.size} "
                             f"(mono, the length of its input)")
        z = resample(z, rate, sample_rate_hz) if rate != sample_rate_hz else z
        out = np.zeros(x.size, np.float32)
        out[: min(z.size, x.size)] = z[: x.size]
        return np.clip(out, -1.0, 1.0)

    def _model(self, lossy: np.ndarray, mask: np.ndarray, rate: int) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


@CONCEALMENT_MODELS.register("cmd")
class CommandConcealment(ModelConcealment):
    """``cmd:run="CMD {lossy} {mask} {out}"``: a PLC model run as a command (see the module docstring)."""

    name = "cmd"

    def __init__(self, run: str, frame_ms: float = 20.0, sample_rate_hz: int = 16000, timeout_s: float = 600.0,
                 shell: bool = False) -> None:
        super().__init__(frame_ms, sample_rate_hz)
        check_template(run, "cmd: run", ("lossy", "mask", "out"), FIELDS)
        if not 0 < timeout_s <= 86_400:
            raise ConfigError(f"cmd: timeout_s must lie in (0, 86400], got {timeout_s!r}")
        self.run, self.timeout_s, self.shell = run, float(timeout_s), bool(shell)

    def describe(self) -> str:
        return f"cmd ({self.run!r})"

    def _model(self, lossy: np.ndarray, mask: np.ndarray, rate: int) -> np.ndarray:
        import soundfile as sf

        from lossbench.audio import from_int16, to_int16

        with tempfile.TemporaryDirectory(prefix="lossbench-cmd-") as d:
            tmp = Path(d)
            src, msk, dst = tmp / "lossy.wav", tmp / "mask.txt", tmp / "concealed.wav"
            sf.write(str(src), to_int16(lossy), rate, subtype="PCM_16")
            msk.write_text("".join("1\n" if m else "0\n" for m in mask))
            run_command(self.run, {"lossy": src, "mask": msk, "out": dst, "rate": str(rate)}, tmp, self.timeout_s,
                        self.shell, "cmd concealment", outputs=(dst,))
            try:
                z, sr = sf.read(str(dst), dtype="int16", always_2d=True)
            except (RuntimeError, sf.LibsndfileError) as exc:
                raise CodecError(f"cmd concealment ({self.run!r}) wrote a file that is not audio: {exc}") from None
        if sr != rate or z.shape[1] != 1 or z.shape[0] != lossy.size:
            raise CodecError(f"cmd concealment ({self.run!r}) wrote {z.shape[0]} samples, {z.shape[1]} channel(s) at "
                             f"{sr} Hz; expected {lossy.size} samples (the lossy file's length), 1 channel at "
                             f"{rate} Hz")
        return from_int16(z[:, 0])


@CONCEALMENT_MODELS.register("py")
class CallableConcealment(ModelConcealment):
    """``py:fn=package.module:function``: a PLC model called in the process (see the module docstring)."""

    name = "py"

    def __init__(self, fn: str, frame_ms: float = 20.0, sample_rate_hz: int = 16000) -> None:
        super().__init__(frame_ms, sample_rate_hz)
        self.fn_name = fn
        self.fn = load_callable(fn, "py")

    def describe(self) -> str:
        return f"py ({self.fn_name})"

    def _model(self, lossy: np.ndarray, mask: np.ndarray, rate: int) -> np.ndarray:
        try:
            return np.asarray(self.fn(lossy.copy(), mask.copy(), rate))
        except Exception as exc:  # the user's model failed: its error, named, becomes the row's
            raise CodecError(f"py concealment {self.fn_name}: {type(exc).__name__}: {exc}") from exc


def load_callable(target: str, what: str) -> Callable[..., Any]:
    """``package.module:function`` (or ``package.module.function``) imported; a ConfigError naming what is
    missing."""
    mod_name, sep, attr = target.partition(":")
    if not sep:
        mod_name, _, attr = target.rpartition(".")
    if not mod_name or not attr:
        raise ConfigError(f"{what}: fn={target!r} must name a function as package.module:function")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"{what}: cannot import module {mod_name!r} of fn={target!r}: {exc}") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise ConfigError(f"{what}: module {mod_name!r} has no function {attr!r} (fn={target!r})")
    return fn
