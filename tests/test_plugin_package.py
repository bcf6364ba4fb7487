"""The example plug-in package (examples/lossbench-example-plugin) installs with pip and sweeps with all four of
its plug-ins by their registered names: a codec, a concealment, a loss model and a metric (docs/plugins.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "lossbench-example-plugin"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The package pip-installed into a folder of its own (the test environment stays as it was)."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(PACKAGE, src)
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    assert (target / "lossbench_example_plugin").is_dir()
    return target


def _lossbench(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from lossbench.cli import app; sys.argv[0] = 'lossbench'; app()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_sweep_uses_the_installed_codec_concealment_loss_model_and_metric(site, tmp_path):
    run = tmp_path / "run"
    res = _lossbench(site, "sweep", "--codec", "mulaw:frame_ms=20", "--concealment", "fade-repeat",
                     "--concealment", "zeros", "--channel", "periodic:every=7,offset=3", "--metrics", "lsd,si_snr",
                     "--clips", "2", "--workers", "1", "--out", str(run), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    df = pd.read_parquet(run / "results.parquet")
    assert (df["status"] == "ok").all() and len(df) == 4 and set(df["codec"]) == {"mulaw"}
    assert set(df["concealment"]) == {"fade-repeat", "zeros"}
    assert df["lsd"].notna().all() and "clipped_samples" in df.columns  # the plug-in's metric and fact
    assert np.allclose(df["network_loss"], 1 / 7, atol=0.02)  # the periodic channel
    by = df.groupby("concealment")["si_snr"].mean()
    assert by["fade-repeat"] != by["zeros"]
    assert (run / "report.html").exists()


def test_plug_in_errors_name_the_value_and_the_names_are_listed(site, tmp_path):
    res = _lossbench(site, "sweep", "--codec", "mulaw:sample_rate_hz=44100", "--channel", "bernoulli", "--loss", "0.1",
                     "--out", str(tmp_path / "bad"), cwd=tmp_path)
    said = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0 and "mulaw: sample_rate_hz must be 8000 or 16000, got 44100" in said
    listed = _lossbench(site, "codecs", "list", cwd=tmp_path)
    assert "mulaw" in listed.stdout and "fade-repeat" in listed.stdout
