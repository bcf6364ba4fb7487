"""Waveform-domain concealment strategies, usable with any codec.

A codec decodes what arrived and reports which frames are missing (their
samples are zero); a strategy here fills them. Codec-native strategies (Opus
PLC and LBRR FEC, AMR-WB bad-frame handling, model-based token or latent
concealment) live with their codec and are listed by ``codec.concealments``.
"""

from lossbench.concealment.waveform import (
    CONCEALMENTS,
    Concealment,
    NoiseFill,
    Repeat,
    WaveformSubstitution,
    Zeros,
)

__all__ = ["CONCEALMENTS", "Concealment", "NoiseFill", "Repeat", "WaveformSubstitution", "Zeros"]
