"""Error hierarchy.

Every error lossbench raises on purpose is a :class:`LossbenchError`. Messages
quote the bad value and, where the set is finite, list the valid ones, so a
user can fix the input without reading the source.
"""

from __future__ import annotations

from collections.abc import Iterable


class LossbenchError(Exception):
    """Base class of all errors raised by lossbench on purpose."""


class ConfigError(LossbenchError, ValueError):
    """A parameter, option or spec entry has a bad value."""


class UnknownNameError(ConfigError, KeyError):
    """A name (codec, channel, concealment, ...) is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class TraceFormatError(LossbenchError, ValueError):
    """A loss-trace file cannot be parsed; the message names file and position."""


class AudioError(LossbenchError, ValueError):
    """An audio file or clip is unusable (unreadable, empty, wrong rate...)."""


class CodecError(LossbenchError):
    """A codec backend failed or is not available on this machine."""


class OutputError(LossbenchError, OSError):
    """A file or directory could not be written (permissions, full disk, read-only file system)."""


class writing:
    """Context manager: an OSError while writing ``path`` becomes an OutputError naming it.

    Example::

        with writing(path):
            path.write_text(text)
    """

    def __init__(self, path: object, what: str = "write") -> None:
        self.path, self.what = path, what

    def __enter__(self) -> writing:
        return self

    def __exit__(self, typ, exc, tb) -> None:
        if exc is not None and isinstance(exc, OSError) and not isinstance(exc, LossbenchError):
            reason = exc.strerror or str(exc)
            raise OutputError(f"cannot {self.what} {self.path}: {reason}") from exc


def choices(values: Iterable[object]) -> str:
    """Format a list of allowed values for an error message."""
    return ", ".join(repr(v) for v in sorted(values, key=str))
