"""The project's Opus 1.5.2 build and the two C shims over it, loaded with ctypes.

``make setup`` (``scripts/build-opus.sh``) fetches Debian's source package of
Opus 1.5.2, builds it with DRED, deep PLC, OSCE and LossGen into
``build/opus-1.5.2/`` and compiles, next to ``libopus.so``:

- ``liblossbench_lossgen.so`` (``lossgen_shim.c``): LossGen sequences drawn
  from uniform numbers the caller passes, so they are seeded and thread-safe;
- ``liblossbench_fargan.so`` (``fargan_shim.c``): LPCNet feature analysis,
  FARGAN synthesis and the deep-PLC feature predictor;
- ``bin/opus_demo``: the reference program the peer tests compare against.

Python reaches libopus's hidden symbols only through these shims. The build
directory is ``$LOSSBENCH_OPUS_DIR`` when set, else ``build/opus-1.5.2`` in the
source tree.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from lossbench.errors import CodecError

OPUS_VERSION = "1.5.2"


class NativeBuildMissing(CodecError):
    """The Opus 1.5.2 build (or one of its shims) is not there: run ``make setup``."""


def build_dir() -> Path:
    """Where the Opus 1.5.2 build lives (``$LOSSBENCH_OPUS_DIR`` or ``<source tree>/build/opus-1.5.2``)."""
    env = os.environ.get("LOSSBENCH_OPUS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "build" / f"opus-{OPUS_VERSION}"


def _path(rel: str) -> Path:
    p = build_dir() / rel
    if not p.exists():
        raise NativeBuildMissing(
            f"{p} is missing: the Opus {OPUS_VERSION} build is not there; run `make setup` "
            f"(scripts/build-opus.sh builds it into {build_dir()}), or set LOSSBENCH_OPUS_DIR to a build"
        )
    return p


def libopus_path() -> Path:
    return _path("lib/libopus.so.0")


def opus_demo_path() -> Path:
    return _path("bin/opus_demo")


_LIBS: dict[str, ctypes.CDLL] = {}


def _load(name: str, declare) -> ctypes.CDLL:
    """Load a library of the build once, declaring its functions' ctypes signatures with ``declare``."""
    lib = _LIBS.get(name)
    if lib is None:
        try:
            lib = ctypes.CDLL(str(_path(f"lib/{name}")))
        except OSError as exc:
            raise NativeBuildMissing(f"cannot load {name} from {build_dir()}: {exc}; run `make setup` again") from None
        declare(lib, ctypes.c_void_p, ctypes.c_int)
        _LIBS[name] = lib
    return lib


def _declare_lossgen(lib: ctypes.CDLL, vp, c_int) -> None:
    lib.lb_lossgen_state_size.restype = c_int
    lib.lb_lossgen_init.argtypes = [vp]
    lib.lb_lossgen_sample.argtypes = [vp, ctypes.c_float, c_int, vp, vp]
    lib.lb_lossgen_sample.restype = c_int


def _declare_fargan(lib: ctypes.CDLL, vp, c_int) -> None:
    for f in ("lb_analysis_create", "lb_fargan_create", "lb_plc_create"):
        getattr(lib, f).restype = vp
    for f in ("lb_analysis_destroy", "lb_fargan_destroy", "lb_plc_destroy", "lb_plc_reset"):
        getattr(lib, f).argtypes = [vp]
    lib.lb_analysis_frames.argtypes = [vp, vp, c_int, vp]
    lib.lb_fargan_cont.argtypes = [vp, vp, vp]
    lib.lb_fargan_frames.argtypes = [vp, vp, c_int, vp]
    lib.lb_plc_step.argtypes = [vp, vp, vp]
    lib.lb_burg_cepstrum.argtypes = [vp, vp]


def lossgen_lib() -> ctypes.CDLL:
    return _load("liblossbench_lossgen.so", _declare_lossgen)


def fargan_lib() -> ctypes.CDLL:
    return _load("liblossbench_fargan.so", _declare_fargan)
