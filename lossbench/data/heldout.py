"""Held-out speech for evaluation: the validation split of ``lossbench data prepare-speech``, picked so that
several speakers (unseen in training) are in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lossbench.errors import ConfigError


def eval_clips(root: Path, count: int, real_only: bool = False, min_s: float = 0.0) -> list[np.ndarray]:
    """The longest held-out clips, alternating speakers so several are in."""
    return [x for _, x in heldout_clips(root, count, real_only, min_s)]


def heldout_clips(root: Path, count: int, real_only: bool = False, min_s: float = 0.0) -> list[tuple[str, np.ndarray]]:
    """(file, audio) of up to ``count`` validation clips, longest first, one speaker after another."""
    import soundfile as sf

    man = root / "manifest.jsonl"
    if not man.exists():
        raise ConfigError(f"{man} does not exist; build the data with 'lossbench data prepare-speech {root}' (make data)")
    entries = [e for e in map(json.loads, man.read_text().splitlines())
               if e["split"] == "valid" and e["duration_s"] >= min_s and not (real_only and e["source"] == "synthetic")]
    entries.sort(key=lambda e: (-e["duration_s"], e["file"]))
    by_speaker: dict[str, list[dict]] = {}
    for e in entries:
        by_speaker.setdefault(e["speaker"], []).append(e)
    chosen: list[dict] = []
    while len(chosen) < count and any(by_speaker.values()):
        for v in by_speaker.values():
            if v and len(chosen) < count:
                chosen.append(v.pop(0))
    return [(e["file"], sf.read(root / e["file"], dtype="float32")[0]) for e in chosen]
