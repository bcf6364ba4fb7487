"""Picking a codec mode from a mode index or a bit rate (AMR-NB, AMR-WB)."""

from __future__ import annotations

from collections.abc import Sequence

from lossbench.errors import ConfigError


def pick_mode(codec: str, mode: int | None, kbps: float | None, rates_kbps: Sequence[float], default: int) -> int:
    """A mode index from ``mode`` or from ``kbps`` (one of ``rates_kbps``), not both; ConfigError naming what
    is allowed otherwise."""
    if mode is not None and kbps is not None:
        raise ConfigError(f"{codec}: give mode or kbps, not both")
    if kbps is not None:
        match = [i for i, k in enumerate(rates_kbps) if abs(k - float(kbps)) < 0.01]
        if not match:
            raise ConfigError(f"{codec}: kbps must be one of {', '.join(f'{k:g}' for k in rates_kbps)}, got {kbps!r}")
        return match[0]
    mode = default if mode is None else mode
    if int(mode) != mode or not 0 <= mode < len(rates_kbps):
        raise ConfigError(f"{codec}: mode must be an integer 0..{len(rates_kbps) - 1}, got {mode!r}")
    return int(mode)
