"""The one training loop every trainer of lossbench runs on (the codec backbones, the masked LM and its concealment
head, Glaris and its stage-III decoder).

Each trainer supplies what is its own: set-up and resume, one optimisation
step, a checkpoint dictionary, an evaluation. :func:`run_loop` does the rest
the same way for all of them:

- steps run from the resumed step to ``steps`` (or until ``max_hours`` of
  wall time have passed, then a checkpoint is written and the run can be
  resumed later);
- every ``log_every`` steps a record ``{"step", "time_s", "threads", **losses}``
  is appended to ``log.jsonl`` (``time_s`` restarts at each resumed segment;
  the model cards sum the segments and report the torch thread counts);
- every ``ckpt_every`` steps and at the end, ``ckpt.pt`` is written by
  write-then-rename (an interrupted run never leaves a torn checkpoint);
- every ``eval_every`` steps and at the end, ``{"step", **evaluate(step)}``
  is appended to ``eval.jsonl``;
- a tqdm bar shows progress when ``progress`` is on.

Every random choice of a step must come from generators seeded by (seed,
step) inside ``train_step``, so a resumed run continues exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class LoopConfig:
    steps: int
    ckpt_every: int = 500
    eval_every: int = 2000
    log_every: int = 50
    max_hours: float | None = None
    desc: str = "train"
    progress: bool = True
    postfix: tuple[str, ...] = ()  # keys of the step's record shown on the progress bar


def load_resume(ckpt: Path) -> dict | None:
    """The checkpoint dictionary to resume from, or None for a new run."""
    import torch

    return torch.load(ckpt, map_location="cpu", weights_only=False) if ckpt.exists() else None


def save_checkpoint(obj: Any, path: Path) -> None:
    """``torch.save`` by write-then-rename."""
    import torch

    from lossbench.files import atomic

    with atomic(path) as tmp:
        torch.save(obj, tmp)


def run_loop(out: Path, cfg: LoopConfig, step: int, train_step: Callable[[int, bool], dict[str, float] | None],
             state: Callable[[int], dict], evaluate: Callable[[int], dict[str, float]] | None = None) -> Path:
    """Run steps ``step .. cfg.steps - 1``; returns the checkpoint path.

    ``train_step(step, log)`` runs one optimisation step and, when ``log`` is
    true, returns the record to log (plain floats); ``state(step)`` is the
    checkpoint dictionary after ``step`` steps; ``evaluate(step)`` a dict of
    held-out measurements.
    """
    import torch

    ckpt = out / "ckpt.pt"
    threads = torch.get_num_threads()
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc=cfg.desc, unit="step", mininterval=5.0)
    t0 = time.time()
    saved = None
    try:
        with open(out / "log.jsonl", "a") as log:
            while step < cfg.steps:
                if cfg.max_hours is not None and time.time() - t0 > cfg.max_hours * 3600:
                    break
                want = (step + 1) % cfg.log_every == 0
                rec = train_step(step, want)
                step += 1
                if bar is not None:
                    bar.update(1)
                if want and rec is not None:
                    log.write(json.dumps({"step": step, "time_s": round(time.time() - t0, 1), "threads": threads,
                                          **rec}) + "\n")
                    log.flush()
                    if bar is not None and cfg.postfix:
                        bar.set_postfix({k: f"{rec[k]:.4f}" for k in cfg.postfix if k in rec})
                if step % cfg.ckpt_every == 0 or step == cfg.steps:
                    save_checkpoint(state(step), ckpt)
                    saved = step
                if evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                    m = evaluate(step)
                    with open(out / "eval.jsonl", "a") as f:
                        f.write(json.dumps({"step": step, **m}) + "\n")
        if saved != step:
            save_checkpoint(state(step), ckpt)
    finally:
        if bar is not None:
            bar.close()
    return ckpt
