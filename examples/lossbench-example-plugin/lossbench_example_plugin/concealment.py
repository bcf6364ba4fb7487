"""``fade-repeat``: the last good frame repeated, fading by 6 dB per frame (a waveform concealment: any codec)."""

from __future__ import annotations

import numpy as np

from lossbench.concealment import Concealment


class FadeRepeat(Concealment):
    name = "fade-repeat"
    db_per_frame = 6.0

    def _fill(self, out: np.ndarray, a: int, b: int, frame_samples: int, sr: int) -> None:
        # out[:a] is the history (already concealed); fill out[a:b] in place
        last = out[max(0, a - frame_samples) : a]
        if last.size == 0:
            out[a:b] = 0.0
            return
        reps = np.resize(last, b - a)
        gain = 10 ** (-self.db_per_frame * (1 + np.arange(b - a) / frame_samples) / 20)
        out[a:b] = reps * gain


#: the entry point names an instance: a concealment keeps no state between calls
FADE_REPEAT = FadeRepeat()
