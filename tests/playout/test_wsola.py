"""WSOLA keeps pitch while it changes duration."""

import numpy as np
import pytest

from lossbench.errors import ConfigError
from lossbench.playout.wsola import stretch


def _peak_hz(x, sr):
    n = 1 << 20
    f = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    return np.argmax(f) * sr / n


@pytest.mark.parametrize("rate", [0.75, 1.5, 2.0])
def test_stretched_tone_keeps_its_frequency(rate):
    sr = 16000
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    y = stretch(x, rate, sr)
    assert y.size == round(sr * rate)
    core = y[800:-800]
    assert _peak_hz(core, sr) == pytest.approx(220, rel=0.01)
    # no gaps or doubling: the envelope stays near the tone's amplitude
    env = np.abs(core).reshape(-1, 160).max(axis=1) if core.size % 160 == 0 else np.abs(core[: core.size // 160 * 160]).reshape(-1, 160).max(axis=1)
    assert env.min() > 0.4 and env.max() < 0.6


def test_bad_rate_is_named():
    with pytest.raises(ConfigError, match="rate"):
        stretch(np.zeros(100, np.float32), 0.0, 16000)
