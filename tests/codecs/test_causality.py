"""The receiver clock's rule, checked for every registered codec, each of its native concealments, and packet FEC
(RED, XOR): what frame t plays may not depend on a packet that arrived after frame t's playout time.

Generated from the codec registry, so a new codec is covered without editing this file. The channel has no network
delay and a 0 ms buffer, so frame t plays when its own packet arrives; frame t's packet is lost. Dropping every
packet that arrives after frame t's playout time must leave the decoder's output up to the end of frame t as it
was (the output is compared before the codec's own look-ahead, which the listener waits for anyway). Dropping
every packet that arrives in time must change it, so that the check can fail.

The probe is :func:`lossbench.codecs.causality.clock_violation`, which the planner also runs on plug-in codecs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lossbench.codecs import CODECS, make_codec
from lossbench.codecs.causality import clock_violation
from lossbench.corpus import default_corpus

#: variants beyond each codec's defaults: the options that carry repairs in later packets
VARIANTS = ["pcm:red=1", "pcm:xor=4", "g711:red=1", "opus:bitrate=24000,fec=1,loss_perc=20",
            "opus:bitrate=24000,dred_ms=200,loss_perc=20", "opus:bitrate=16000,red=2", "opus:bitrate=16000,xor=3"]


#: codecs with required parameters: the spec they are probed with (exec: Codec 2's binaries over G.192)
_ADAPTER = Path(__file__).resolve().parents[2] / "examples" / "g192" / "codec2_g192.py"
_A = f"{sys.executable} {_ADAPTER}"
REQUIRED = {"exec": f'exec:encode="{_A} enc 3200 {{in}} {{out}}",decode="{_A} dec 3200 {{in}} {{out}}",'
                    f"sample_rate_hz=8000,frame_ms=20,delay_ms=17.5"}


def _cases() -> list[tuple[str, str]]:
    out = []
    for spec in [*(REQUIRED.get(n, n) for n in CODECS.names()), *VARIANTS]:
        codec = make_codec(spec)
        for conc in codec.native_concealments or ("zeros",):
            out.append((spec, conc))
    return out


@pytest.fixture(scope="module")
def speech():
    return default_corpus()[0]


@pytest.mark.slow
@pytest.mark.parametrize("spec, conc", _cases())
def test_a_frame_uses_only_what_arrived_by_its_playout_time(spec, conc, speech):
    codec = make_codec(spec)
    clip = speech.load(codec.sample_rate_hz)
    clip = type(clip)(clip.id, clip.samples[: 3 * codec.sample_rate_hz], clip.sample_rate_hz, clip.meta)
    assert clock_violation(codec, conc, clip) is None


def test_the_probe_finds_a_codec_that_waits_for_later_packets(speech, monkeypatch):
    """RED with its copies used whatever their arrival (the receiver clock taken away from depacketize) is
    caught, naming the frame."""
    import lossbench.codecs.base as base

    real = base.depacketize
    monkeypatch.setattr(base, "depacketize", lambda *a: real(*a[:5]))  # no reception: no clock
    codec = make_codec("pcm:red=1")
    clip = speech.load(16000)
    clip = type(clip)(clip.id, clip.samples[:48000], 16000, clip.meta)
    why = clock_violation(codec, "zeros", clip)
    assert why is not None and "uses packets that come too late" in why
