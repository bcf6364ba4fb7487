"""A helper process that runs native metric code, so its crash cannot kill the caller.

The parent starts ``python -m lossbench.metrics._isolated`` once and
sends it pickled ``(module, function name, args)`` requests on stdin; the
reply on stdout is ``("ok", value)`` or ``("err", exception)``. A plain
subprocess (not multiprocessing) is used so that it works from daemonic
workers too (Dask and process-pool workers cannot fork multiprocessing
children that outlive them cleanly).
"""

from __future__ import annotations

import importlib
import pickle
import sys


def main() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            mod, name, args = pickle.load(inp)
        except EOFError:
            return
        try:
            fn = getattr(importlib.import_module(mod), name)
            reply = ("ok", fn(*args))
        except Exception as exc:  # sent back to the caller
            reply = ("err", exc)
        pickle.dump(reply, out)
        out.flush()


if __name__ == "__main__":
    main()
