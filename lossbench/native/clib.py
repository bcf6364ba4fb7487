"""Loading a C library from the system (a codec's, speexdsp's) with its ctypes signatures, naming the Debian package
when it is missing."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

from lossbench.errors import CodecError


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
