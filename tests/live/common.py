"""What the live client tests share: a 5 s speech clip (the embedded corpus's en_00), made once per module once the
client is known to be usable here, and a check that no client process outlived its run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from lossbench.live import LiveError


def five_second_clip(folder: Path) -> Path:
    x, sr = sf.read("lossbench/corpus/default/en_00.flac", dtype="float32")
    p = folder / "en_00_5s.wav"
    sf.write(str(p), x[:5 * sr], sr)
    return p


def client_clip(tmp_path_factory, client) -> Path:
    """The clip for ``client``'s tests; the module is skipped (with the client's own message) where it cannot run."""
    try:
        client.check()
    except LiveError as e:
        pytest.skip(str(e))
    return five_second_clip(tmp_path_factory.mktemp("clip"))


def none_running(pattern: str) -> bool:
    """No process whose command line matches ``pattern`` is running."""
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode != 0
