"""Waveform-domain concealment strategies, usable with any codec.

A codec decodes what arrived and reports which frames are missing (their
samples are zero); a strategy here fills them. Codec-native strategies (Opus
PLC and LBRR FEC, AMR-WB bad-frame handling, model-based token or latent
concealment) live with their codec and are listed by ``codec.concealments``.
A concealment model a user brings (``cmd:run="..."``, ``py:fn=...``) is named by its spec
(:mod:`lossbench.concealment.external`).
"""

from lossbench.concealment import external  # noqa: F401  (registers cmd: and py:)
from lossbench.concealment.waveform import (
    CONCEALMENT_MODELS,
    CONCEALMENTS,
    Concealment,
    NoiseFill,
    Repeat,
    WaveformSubstitution,
    Zeros,
)

__all__ = ["CONCEALMENT_MODELS", "CONCEALMENTS", "Concealment", "NoiseFill", "Repeat", "WaveformSubstitution", "Zeros"]
