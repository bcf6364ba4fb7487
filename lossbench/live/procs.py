"""Client processes that never outlive the run: each in its own process group, killed (TERM, then KILL) when the
run ends however it ends; a failure names the client and its last lines of stderr."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from lossbench.live.relay import LiveError


class Proc:
    """One client process; stderr goes to a temp file so that a failure can quote it."""

    def __init__(self, name: str, argv: list[str], stdin: bool = False, cwd: str | Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self._err = tempfile.TemporaryFile()
        try:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=self._err, cwd=cwd, env=env,
                                      start_new_session=True, text=True, bufsize=1)
        except OSError as e:
            raise LiveError(f"{name}: cannot start {argv[0]!r}: {e.strerror}") from None

    def stderr_tail(self, lines: int = 6) -> str:
        self._err.seek(0)
        text = self._err.read().decode(errors="replace").strip().splitlines()
        return " | ".join(ln.strip() for ln in text[-lines:]) or "(no stderr)"

    def fail(self, what: str) -> LiveError:
        return LiveError(f"{self.name}: {what}; its last stderr lines: {self.stderr_tail()}")

    def readline(self, timeout_s: float) -> str | None:
        """The next line of stdout within ``timeout_s``, or None (timeout or end of output)."""
        assert self.p.stdout is not None
        end = time.monotonic() + timeout_s
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                line = self.p.stdout.readline()
                return line if line else None

    def read_json(self, timeout_s: float, what: str) -> dict:
        """The next stdout line within ``timeout_s`` as a JSON object; a failure naming ``what`` was expected."""
        line = self.readline(timeout_s)
        if not line:
            raise self.fail(f"printed no {what}")
        try:
            out = json.loads(line)
        except json.JSONDecodeError:
            out = None
        if not isinstance(out, dict):
            raise self.fail(f"printed {line.strip()[:80]!r} instead of its {what}")
        return out

    def wait_for(self, word: str, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            line = self.readline(end - time.monotonic())
            if line is None:
                break
            if line.strip() == word:
                return
        try:  # its output ended: it is exiting
            code: int | None = self.p.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            code = None
        raise self.fail(f"did not start (exit status {code})" if code is not None else
                        f"not ready after {timeout_s:g} s")

    def say(self, line: str) -> None:
        try:
            assert self.p.stdin is not None
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def wait(self, timeout_s: float) -> int:
        try:
            return self.p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise self.fail(f"still running after {timeout_s:g} s") from None

    def kill(self) -> None:
        if self.p.poll() is None:
            for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.p.pid, sig)
                try:
                    self.p.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:  # the leader is gone; its group may not be
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.p.pid, signal.SIGKILL)
        for f in (self.p.stdin, self.p.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self._err.close()


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    """A list to put client processes in; all of them are killed on the way out."""
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for p in reversed(procs):
            p.kill()


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
