"""Writing files safely and naming their contents: one write-then-rename and one hash for the project.

``atomic(path)`` yields a temporary path next to ``path``; when the block
ends without an exception the temporary file replaces ``path`` in one
``os.replace``, so a reader (or a resumed run after SIGKILL) sees the old
file or the new one, never a torn one. An OSError on the way becomes an
:class:`~lossbench.errors.OutputError` naming ``path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from lossbench.errors import ConfigError, writing

HASH_CHARS = 12  # every weights / file hash the project records has this many hex digits


@contextlib.contextmanager
def atomic(path: str | Path, mkdir: bool = False) -> Iterator[Path]:
    """``with atomic(p) as tmp: write tmp`` -> ``tmp`` renamed onto ``p`` on success, removed on failure."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with writing(p):
        if mkdir:
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield tmp
            os.replace(tmp, p)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def write_atomic(path: str | Path, data: str | bytes, mkdir: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` by write-then-rename."""
    p = Path(path)
    with atomic(p, mkdir) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return p


def file_hash(path: str | Path) -> str:
    """The first :data:`HASH_CHARS` hex digits of the file's SHA-256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:HASH_CHARS]


def safe_name(s: str) -> str:
    """A file-name-safe form of ``s``; a long name is cut and ends in a hash of the whole, so that two
    names differing only past the cut (two loss levels of one channel) never share a file."""
    import hashlib
    import re

    t = re.sub(r"[^A-Za-z0-9_.=-]+", "_", s)
    if len(t) <= 120:
        return t
    return t[:107] + "_" + hashlib.sha256(s.encode()).hexdigest()[:12]


def read_toml(path: str | Path, what: str) -> dict:
    """A TOML file's tables; a ConfigError naming ``what`` (e.g. "spec file") if it is missing or not TOML."""
    import tomllib

    p = Path(path)
    try:
        return tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(p)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
