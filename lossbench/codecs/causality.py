"""The receiver clock's rule, checked on a codec by what it does: what frame t plays may not depend on a packet
that arrived after frame t's playout time.

:func:`clock_violation` decodes a short clip with frame t's packet lost (no network delay, a 0 ms buffer, so
frame t plays when its own packet arrives and every later packet comes too late for it), then again with every
packet after frame t's playout time dropped: the decoder's output up to the end of frame t (before the codec's own
look-ahead, which the listener waits for anyway) must not change. Dropping what arrived in time must change it, or
the probe saw nothing. Run for several frames t, so that a repair scheme's position (an XOR group's first member,
a packet whose successor carries LBRR) is met.

The test suite runs it on every registered codec (``tests/codecs/test_causality.py``); the planner runs it on a
plug-in codec before a sweep uses it, and refuses one that breaks the rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lossbench.core import Clip, PacketKind, Reception

if TYPE_CHECKING:
    from lossbench.codecs.base import Codec

#: the probe's buffer: frame t plays when its own packet arrives
BUFFER_S = 0.0


def probe_frames(n_frames: int) -> list[int]:
    """The frames the probe checks: spread over the clip, two of them adjacent."""
    return sorted({n_frames // 2, n_frames // 2 + 1, n_frames // 4, n_frames // 3 + 1, 2 * n_frames // 3})


def clock_violation(codec: Codec, concealment: str, clip: Clip) -> str | None:
    """None if ``codec`` keeps to the receiver clock with ``concealment`` on ``clip`` (at the codec's rate), else
    what it did wrong, naming the frame."""
    s = codec.encode(clip)
    send = s.send_times_s()
    primary = [p for p in s.packets if p.kind == PacketKind.PRIMARY]
    if not primary:
        return "the stream has no primary packets"
    n_frames = max(f for p in primary for f in p.frames) + 1
    F = codec.frame_samples

    def decode(gone: np.ndarray) -> np.ndarray:
        rec = Reception(~gone, np.where(gone, np.nan, send), send + BUFFER_S)
        return codec.decode(s, rec, concealment).audio

    for t in probe_frames(n_frames):
        owner = next(p for p in primary if t in p.frames)
        deadline_t = send[owner.seq] + BUFFER_S
        lost = np.zeros(s.num_packets, bool)
        lost[owner.seq] = True  # frame t's packet alone: every later one arrives, with whatever repair it carries
        upto = max(0, (t + 1) * F - codec.delay_samples)
        base = decode(lost)
        if not np.array_equal(base[:upto], decode(lost | (send > deadline_t + 1e-9))[:upto]):
            return (f"frame {t}'s output changed when the packets that arrive after its playout time were dropped: "
                    f"it uses packets that come too late for it")
        if np.array_equal(base[:upto], decode(lost | (send <= deadline_t))[:upto]):
            return f"frame {t}'s output did not change when every packet that arrives in time was dropped"
    return None
