"""One generic registry, used for codecs, channels (loss models) and concealments.

A registry maps a name to a factory. Entries are added with the
:meth:`Registry.register` decorator at import time, and third-party packages
can add theirs through an entry-point group (for example
``lossbench.codecs``), loaded the first time a name is looked up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

from lossbench.errors import UnknownNameError, choices

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> factory table for one kind of thing.

    Args:
        kind: human-readable name of the kind ("codec", "loss model", ...),
            used in error messages.
        entry_point_group: optional entry-point group that plug-ins use.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._plugins_loaded = entry_point_group is None
        self._plugins_lock = threading.Lock()

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (and aliases)."""

        def deco(obj: T) -> T:
            self.add(name, obj, *aliases)
            return obj

        return deco

    def add(self, name: str, obj: T, *aliases: str) -> None:
        key = name.lower()
        if key in self._items or key in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[key] = obj
        for alias in aliases:
            self._aliases[alias.lower()] = key

    def _load_plugins(self) -> None:
        """Load the entry-point group's plug-ins once. The flag is set only after every plug-in is in the table,
        under a lock: a second thread asking meanwhile waits, and never looks a name up in a half-filled table."""
        if self._plugins_loaded:
            return
        with self._plugins_lock:
            if self._plugins_loaded:
                return
            for ep in metadata.entry_points(group=self.entry_point_group or ""):
                if ep.name.lower() not in self._items:
                    self._items[ep.name.lower()] = ep.load()
            self._plugins_loaded = True

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` (resolving aliases)."""
        self._load_plugins()
        key = name.lower()
        key = self._aliases.get(key, key)
        if key not in self._items:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid names: {choices(self._items)}"
            )
        return key

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._load_plugins()
        key = name.lower()
        return key in self._items or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
