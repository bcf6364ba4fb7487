"""make corpus-stereo's builder: stereo excerpts of the recorded Debian music, and its errors."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
from typer.testing import CliRunner

from lossbench.cli import app
from lossbench.corpus import fullband
from lossbench.errors import ConfigError


def test_stereo_music_needs_an_output_directory():
    r = CliRunner().invoke(app, ["corpus", "build", "--stereo-music"])
    assert r.exit_code != 0 and "--stereo-music needs --out DIR" in r.output


def test_missing_music_packages_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(fullband, "SINGULARITY", tmp_path / "none")
    with pytest.raises(ConfigError, match="no music from singularity-music.*make corpus-stereo"):
        fullband.build_stereo_music(tmp_path / "out")


@pytest.mark.skipif(not fullband.SINGULARITY.is_dir() or not fullband.WARZONE.is_dir(),
                    reason="singularity-music / warzone2100-music not installed (make corpus-stereo)")
def test_the_stereo_set_is_stereo_and_levelled(tmp_path):
    entries = fullband.build_stereo_music(tmp_path, per_package=1)
    assert len(entries) == 2
    man = json.loads((tmp_path / "manifest.json").read_text())
    for e in man["clips"]:
        info = sf.info(tmp_path / e["file"])
        assert info.channels == 2 and info.samplerate == 48000 and abs(info.duration - 10.0) < 0.01
        assert e["license"] in ("CC-BY-SA-3.0", "GPL-2+") and e["side_to_total_rms"] > 0.05  # really stereo
