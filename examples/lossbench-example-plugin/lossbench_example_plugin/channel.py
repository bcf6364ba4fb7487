"""``periodic``: every ``every``-th packet lost, from ``offset`` on (a deterministic loss model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench.core import LossTrace
from lossbench.errors import ConfigError
from lossbench.netsim.models import LossModel


class _Process:
    """Per-packet decisions in send order (the live relay and timed channels use these)."""

    def __init__(self, every: int, offset: int) -> None:
        self.every, self.offset, self.i = every, offset, 0

    def step(self, t_s: float) -> bool:
        lost = self.i >= self.offset and (self.i - self.offset) % self.every == 0
        self.i += 1
        return lost


@dataclass(frozen=True)
class Periodic(LossModel):
    every: int
    offset: int = 0
    name = "periodic"

    def sample(self, n: int, rng: np.random.Generator, slot_s: float = 0.02) -> LossTrace:
        i = np.arange(n)
        return self._trace((i >= self.offset) & ((i - self.offset) % self.every == 0), slot_s)

    def process(self, rng: np.random.Generator) -> _Process:
        return _Process(self.every, self.offset)

    def params(self) -> dict[str, Any]:
        return {"every": self.every, "offset": self.offset}


def make_periodic(every: int = 10, offset: int = 0) -> LossModel:
    """Every ``every``-th packet lost (loss rate 1 / every), from packet ``offset`` on."""
    if int(every) != every or every < 1:
        raise ConfigError(f"periodic: every must be an integer >= 1, got {every!r}")
    if int(offset) != offset or offset < 0:
        raise ConfigError(f"periodic: offset must be an integer >= 0, got {offset!r}")
    return Periodic(int(every), int(offset))
