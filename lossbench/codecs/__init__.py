"""Codec backends. ``CODECS`` lists them; ``make_codec("opus:bitrate=16000,fec=1")`` builds one.

Backends import their native libraries lazily, so listing codecs works on a
machine without libopus; building one that cannot load says which package
to install.
"""

from lossbench.codecs import amrnb, amrwb, codec2, external, gsm, lc3, opus, pcm, rvq, spandsp, speex  # noqa: F401  (registers)
from lossbench.codecs.base import CODECS, Codec, DecodeResult, make_codec
from lossbench.codecs.glaris import codec as _glaris  # noqa: F401  (registers)
from lossbench.codecs.soundspring import codec as _soundspring  # noqa: F401  (registers)

__all__ = ["CODECS", "Codec", "DecodeResult", "make_codec"]
