"""The core install (``pip install lossbench``, no extras) into a fresh virtual environment: no torch, Sionna, ASR,
MOS-model or packet-capture package comes with it, a small sweep runs, and a feature whose extra is missing says
which extra to install, in one line (lossbench/extras.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def core_python(tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("core") / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    res = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-e", str(REPO)], capture_output=True, text=True,
                         timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return py


def _run(py: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(py), "-c", "import sys; from lossbench.cli import app; sys.argv[0] = 'lossbench'; app()",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_core_has_no_optional_package(core_python):
    probe = ("import importlib.util as u; print(' '.join(m for m in ('torch', 'sionna', 'faster_whisper', 'scapy', "
             "'onnxruntime', 'speechmos', 'visqol', 'numba', 'librosa', 'safetensors') if u.find_spec(m)))")
    res = subprocess.run([str(core_python), "-c", probe], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "", f"the core install brought {res.stdout.strip()}"


def test_a_small_sweep_runs_on_the_core(core_python, tmp_path):
    res = _run(core_python, "sweep", "--codec", "pcm", "--codec", "g711", "--codec", "opus:bitrate=16000",
               "--concealment", "native", "--concealment", "waveform-substitution", "--channel", "gilbert",
               "--loss", "0.1", "--metrics", "pesq_wb,stoi,si_snr", "--clips", "2", "--workers", "1",
               "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert (df["status"] == "ok").all() and set(df["codec"]) == {"pcm", "g711", "opus"}
    assert df["pesq_wb"].notna().all() and (tmp_path / "run" / "report.html").exists()


@pytest.mark.parametrize("args, extra", [
    (["--codec", "rvq", "--metrics", "pesq_wb"], "neural"),
    (["--codec", "pcm", "--metrics", "plcmos"], "mos"),
    (["--codec", "pcm", "--metrics", "wer"], "asr"),
])
def test_a_feature_without_its_extra_names_the_extra_in_one_line(core_python, tmp_path, args, extra):
    res = _run(core_python, "sweep", *args, "--channel", "bernoulli", "--loss", "0.1", "--out", str(tmp_path / "r"),
               cwd=tmp_path)
    said = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0 and f"needs the '{extra}' extra" in said and f"pip install 'lossbench[{extra}]'" in said
    assert "Traceback" not in said


def test_the_nr_channel_and_a_pcap_name_their_extras(core_python, tmp_path):
    res = _run(core_python, "sweep", "--codec", "pcm", "--metrics", "si_snr", "--channel", "nr", "--out",
               str(tmp_path / "r"), cwd=tmp_path)
    assert "needs the 'wireless' extra" in " ".join((res.stdout + res.stderr).split())
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    res = _run(core_python, "traces", "stats", str(pcap), cwd=tmp_path)
    assert "needs the 'capture' extra" in " ".join((res.stdout + res.stderr).split()), res.stdout + res.stderr
