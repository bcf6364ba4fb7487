"""What the ctypes backends share: loading a codec's C library with its signatures, and picking a mode."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence
from typing import Any

from lossbench.errors import CodecError, ConfigError


def load_clib(name: str, soname: str, package: str, signatures: dict[str, tuple[Any, list[Any]]]) -> ctypes.CDLL:
    """The C library ``name`` (found by ``ctypes.util.find_library``, else ``soname``) with ``signatures``
    (function -> (restype, argtypes)) set.

    Raises:
        CodecError: the library is missing, naming the Debian package and ``make setup``.
    """
    try:
        lib = ctypes.CDLL(ctypes.util.find_library(name) or soname)
    except OSError:
        raise CodecError(f"{soname} is not installed: apt-get install {package} (make setup does this as root)") from None
    for fn, (res, args) in signatures.items():
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    return lib


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
