"""Running a user's command: the ``exec:`` codec's encoder and decoder, the ``cmd:`` concealment.

A command is a template whose ``{name}`` fields are replaced by paths (``{in}``, ``{out}``, ``{lossy}``, ...). It
runs in a fresh temporary folder, with a timeout, and without a shell unless one is asked for (``shell=1``): the
template is split as a POSIX shell would split it (:func:`shlex.split`) and each field is replaced inside one
argument, so a path with spaces stays one argument. Since the command runs elsewhere, an argument of the template
that names an existing file or folder by a relative path with a ``/`` in it (``examples/plc/model.py``) is made
absolute against the folder lossbench was started in; with a shell, write absolute paths. A command that cannot
start, exits non-zero, runs past its timeout or leaves no output file raises :class:`~lossbench.errors.CodecError`
naming the command as run, its exit status and the last lines of its standard error: in a sweep that is the task's
error row.
"""

from __future__ import annotations

import shlex
import string
import subprocess
from collections.abc import Mapping
from pathlib import Path

from lossbench.errors import CodecError, ConfigError, choices

#: lines of a failed command's standard error quoted in its error
STDERR_LINES = 5


def template_fields(template: str) -> list[str]:
    """The ``{name}`` fields of a command template."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"command {template!r}: {exc} (write a literal brace as {{{{ or }}}})") from None


def check_template(template: str, what: str, required: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    """A ConfigError unless ``template`` is a non-empty command using every field of ``required`` and none outside
    ``allowed``."""
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"{what}: needs a command, like \"{' '.join(['mytool'] + ['{' + f + '}' for f in required])}\"")
    fields = template_fields(template)
    bad = [f for f in fields if f not in allowed]
    if bad:
        raise ConfigError(f"{what}: unknown field {{{bad[0]}}} in command {template!r}; fields: "
                          f"{choices('{' + f + '}' for f in allowed)}")
    missing = [f for f in required if f not in fields]
    if missing:
        raise ConfigError(f"{what}: command {template!r} must use {{{missing[0]}}}; fields: "
                          f"{choices('{' + f + '}' for f in allowed)}")


def run_command(template: str, fields: Mapping[str, str | Path], cwd: Path, timeout_s: float, shell: bool,
                what: str, outputs: tuple[Path, ...] = ()) -> str:
    """Run ``template`` with its fields filled in ``cwd``; returns the command as run. Raises CodecError if it
    cannot start, fails, times out, or leaves any of ``outputs`` missing or empty."""
    vals = {k: str(v) for k, v in fields.items()}
    if shell:
        quoted = {k: shlex.quote(v) for k, v in vals.items()}
        cmd: str | list[str] = template.format(**quoted)
        shown = str(cmd)
    else:
        try:
            parts = shlex.split(template)
        except ValueError as exc:
            raise ConfigError(f"{what}: command {template!r} does not split into arguments: {exc}") from None
        cmd = [_absolute(p).format(**vals) for p in parts]
        shown = shlex.join(cmd)
    try:
        proc = subprocess.run(cmd, cwd=cwd, shell=shell, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CodecError(f"{what}: command `{shown}` ran past its timeout of {timeout_s:g} s and was stopped"
                         f"{_tail(exc.stderr)}") from None
    except OSError as exc:
        raise CodecError(f"{what}: command `{shown}` could not start: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        raise CodecError(f"{what}: command `{shown}` exited with status {proc.returncode}{_tail(proc.stderr)}")
    for out in outputs:
        if not out.exists() or out.stat().st_size == 0:
            raise CodecError(f"{what}: command `{shown}` exited with status 0 but wrote no {out.name}"
                             f"{_tail(proc.stderr)}")
    return shown


def _absolute(arg: str) -> str:
    """``arg`` made absolute if it is a relative path with a ``/`` that exists here (and has no field)."""
    if "/" not in arg or arg.startswith(("-", "/")) or "{" in arg or not Path(arg).exists():
        return arg
    return str(Path(arg).resolve()).replace("{", "{{").replace("}", "}}")


def _tail(stderr: bytes | str | None) -> str:
    if not stderr:
        return " (nothing on stderr)"
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln for ln in text.strip().splitlines() if ln.strip()][-STDERR_LINES:]
    return "; its stderr ends: " + " | ".join(lines) if lines else " (nothing on stderr)"
