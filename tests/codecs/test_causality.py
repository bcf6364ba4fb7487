"""The receiver clock's rule, checked for every registered codec, each of its native concealments, and packet FEC
(RED, XOR): what frame t plays may not depend on a packet that arrived after frame t's playout time.

Generated from the codec registry, so a new codec is covered without editing this file. The channel has no network
delay and a 0 ms buffer, so frame t plays when its own packet arrives; frame t's packet is lost. Dropping every packet that arrives
after frame t's playout time must leave the decoder's output up to the end of frame t as it was (the output is
compared before the codec's own look-ahead, which the listener waits for anyway). Dropping what arrives in time
must change it (here: every packet that arrives in time is dropped), so that the check can fail.

A codec not yet under the rule would be listed in NOT_YET as an expected failure, strict, so that its entry must
leave when it comes under the rule; none is listed now.
"""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.codecs import CODECS, make_codec
from lossbench.core import PacketKind, Reception
from lossbench.corpus import default_corpus

#: no buffer beyond the network's (which has no delay here): frame t plays when its own packet arrives, so any
#: later packet, even the next, comes too late for it
BUFFER_S = 0.0
#: variants beyond each codec's defaults: the options that carry repairs in later packets
VARIANTS = ["pcm:red=1", "pcm:xor=4", "g711:red=1", "opus:bitrate=24000,fec=1,loss_perc=20",
            "opus:bitrate=24000,dred_ms=200,loss_perc=20", "opus:bitrate=16000,red=2", "opus:bitrate=16000,xor=3"]
#: (spec, concealment) pairs that still use packets the rule forbids, and why
NOT_YET: dict[tuple[str, str], str] = {}


def _cases() -> list[tuple[str, str]]:
    out = []
    for spec in [*CODECS.names(), *VARIANTS]:
        codec = make_codec(spec)
        for conc in codec.native_concealments or ("zeros",):
            out.append((spec, conc))
    return out


def _marked(spec: str, conc: str):
    why = NOT_YET.get((spec, conc))
    return pytest.param(spec, conc, marks=pytest.mark.xfail(strict=True, reason=why)) if why else (spec, conc)


@pytest.fixture(scope="module")
def speech():
    return default_corpus()[0]


@pytest.mark.slow
@pytest.mark.parametrize("spec, conc", [_marked(*c) for c in _cases()])
def test_a_frame_uses_only_what_arrived_by_its_playout_time(spec, conc, speech):
    codec = make_codec(spec)
    clip = speech.load(codec.sample_rate_hz)
    clip = type(clip)(clip.id, clip.samples[: 3 * codec.sample_rate_hz], clip.sample_rate_hz, clip.meta)
    s = codec.encode(clip)
    send = s.send_times_s()
    primary = [p for p in s.packets if p.kind == PacketKind.PRIMARY]
    F = codec.frame_samples
    n_frames = max(f for p in primary for f in p.frames) + 1

    def decode(gone: np.ndarray) -> np.ndarray:
        rec = Reception(~gone, np.where(gone, np.nan, send), send + BUFFER_S)
        return codec.decode(s, rec, conc).audio

    # frames spread over the clip, two of them adjacent, so that each repair scheme's position (an XOR group's
    # first member, a packet whose successor carries LBRR: libopus leaves LBRR out of some packets) is met
    for t in sorted({n_frames // 2, n_frames // 2 + 1, n_frames // 4, n_frames // 3 + 1, 2 * n_frames // 3}):
        owner = next(p for p in primary if t in p.frames)
        deadline_t = send[owner.seq] + BUFFER_S
        lost = np.zeros(s.num_packets, bool)
        lost[owner.seq] = True  # frame t's packet alone: every later one arrives, with whatever repair it carries
        upto = max(0, (t + 1) * F - codec.delay_samples)  # the output of frames 0..t, before the look-ahead
        base = decode(lost)
        after = decode(lost | (send > deadline_t + 1e-9))  # every packet that arrives after frame t's playout time
        assert np.array_equal(base[:upto], after[:upto]), f"frame {t} changed when later packets were dropped"
        inside = decode(lost | (send <= deadline_t))  # every packet that arrives by frame t's playout time
        assert not np.array_equal(base[:upto], inside[:upto]), f"frame {t}: a change inside the window did not show"

