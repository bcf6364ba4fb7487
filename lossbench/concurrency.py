"""Caches that several threads may use at once (a Dask worker runs tasks on several threads of one process).

- :func:`locked_cache`: ``functools.lru_cache`` whose misses are built under a lock, so that threads asking for
  the same model at once build it once and never see one half made.
- :class:`BoundedCache`: a dictionary of at most ``maxsize`` entries, least recently used out first, with a lock.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
F = TypeVar("F", bound=Callable)


def locked_cache(maxsize: int = 1) -> Callable[[F], F]:
    """``functools.lru_cache(maxsize)`` with calls serialised by one re-entrant lock per function.

    Meant for loaders (a model, a library handle): a hit costs one uncontended lock; a miss holds the lock while
    it builds, so a second thread waits for the first one's object instead of building its own.
    """

    def wrap(fn: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(fn)
        lock = threading.RLock()

        @functools.wraps(fn)
        def call(*args, **kwargs):  # the signature is fn's (functools.wraps)
            with lock:
                return cached(*args, **kwargs)

        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]  # lru_cache's API, kept on the wrapper
        call.cache_info = cached.cache_info  # type: ignore[attr-defined]  # lru_cache's API, kept on the wrapper
        return call  # type: ignore[return-value]  # a wrapper of fn's signature (functools.wraps)

    return wrap


class BoundedCache(Generic[K, V]):
    """At most ``maxsize`` entries, the least recently used evicted first; every method holds a lock."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._d: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self._d:
                return None
            self._d.move_to_end(key)
            return self._d[key]

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` unless another thread stored one first; returns the stored one."""
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
            self._d[key] = value
            while len(self._d) > self.maxsize:
                self._d.popitem(last=False)
            return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The entry for ``key``, made by ``make()`` (outside the lock) when missing."""
        v = self.get(key)
        if v is None:
            v = self.put(key, make())
        return v

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._d)
