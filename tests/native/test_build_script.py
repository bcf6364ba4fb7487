"""scripts/build-opus.sh: a build that cannot happen says so, naming the make target and what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_tools

pytestmark = pytest.mark.needs_tools

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("bash", "cat", "find", "head", "sed", "awk", "mkdir", "date", "id", "dirname", "touch", "cp", "rm")


def _sandbox(tmp_path: Path, extra: tuple[str, ...]) -> tuple[Path, dict]:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "build-opus.sh", tmp_path / "scripts")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for t in TOOLS + extra:
        need_tools(t, installed_by="the machine's base system")
        p = shutil.which(t)
        assert p is not None
        os.symlink(p, bindir / t)
    env = {"PATH": str(bindir), "LOSSBENCH_NO_APT": "1", "HOME": str(tmp_path)}
    return tmp_path / "scripts" / "build-opus.sh", env


def test_no_compiler_names_make_setup_and_the_tools(tmp_path):
    script, env = _sandbox(tmp_path, ())
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "make setup" in r.stderr and "missing build tools" in r.stderr and "gcc" in r.stderr


def test_no_source_and_no_cache_names_make_setup_and_the_source(tmp_path):
    script, env = _sandbox(tmp_path, ("cc", "make", "dpkg-source"))
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "make setup" in r.stderr and "source package 'opus'" in r.stderr


def test_a_finished_build_is_cached():
    r = subprocess.run(["bash", str(ROOT / "scripts" / "build-opus.sh")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "building" not in r.stdout and "fetching" not in r.stdout
