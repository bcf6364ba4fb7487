"""torch's intra-op thread count, held at one while any thread of the process needs it.

The neural transceivers entropy-code under PMFs that the sender and the
receiver must compute to the same bits, so both run the model on one thread
(a different thread count can change the order of floating-point sums).
``torch.set_num_threads`` is process-wide: a plain save/set/restore would let
one Python thread restore the old count while another is still coding (two
tasks of a Dask worker with two threads). :func:`single_thread` is therefore
counted: the first to enter sets one thread, the last to leave restores the
count it found.
"""

from __future__ import annotations

import contextlib
import threading

_lock = threading.Lock()
_depth = 0
_saved = 1


@contextlib.contextmanager
def single_thread():
    """Run the block with torch on one intra-op thread (re-entrant and safe across threads)."""
    import torch

    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                torch.set_num_threads(_saved)
