"""What the live client tests share: a 5 s speech clip (the embedded corpus's en_00), made once per module."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf


def five_second_clip(folder: Path) -> Path:
    x, sr = sf.read("lossbench/corpus/default/en_00.flac", dtype="float32")
    p = folder / "en_00_5s.wav"
    sf.write(str(p), x[:5 * sr], sr)
    return p
