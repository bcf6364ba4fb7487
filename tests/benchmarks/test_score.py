"""``lossbench score REF_DIR DEG_DIR``: existing files scored as a sweep's rows (lossbench/benchmarks/score.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from lossbench.benchmarks.score import score_folders
from lossbench.cli import app
from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError
from lossbench.metrics import compute_metrics


@pytest.fixture
def folders(tmp_path):
    ref, deg, mask = tmp_path / "ref", tmp_path / "codec-x", tmp_path / "mask"
    for d in (ref, deg, mask):
        d.mkdir()
    clips = [c.load(16000) for c in default_corpus()[:3]]
    for i, c in enumerate(clips):
        sf.write(ref / f"{c.id}.wav", c.samples, 16000, subtype="PCM_16")
        y = c.samples.copy()
        y[3200 : 3200 + 320 * (i + 1)] = 0.0
        sf.write(deg / f"{c.id}.flac", y, 16000, subtype="PCM_16")
        m = np.zeros(int(np.ceil(c.num_samples / 320)), int)
        m[10 : 11 + i] = 1
        (mask / f"{c.id}.txt").write_text("".join(f"{v}\n" for v in m))
    return ref, deg, mask, clips


def test_pairs_score_as_the_metrics_do_and_carry_their_loss_statistics(folders, tmp_path):
    ref, deg, mask, clips = folders
    path = score_folders(ref, deg, tmp_path / "run", ["pesq_wb", "si_snr"], mask_dir=mask)
    df = pd.read_parquet(path).set_index("clip")
    assert (df["status"] == "ok").all() and set(df["system"]) == {"codec-x"} and len(df) == 3
    for i, c in enumerate(clips):
        r, _ = sf.read(ref / f"{c.id}.wav", dtype="float32")
        y, _ = sf.read(deg / f"{c.id}.flac", dtype="float32")
        want = compute_metrics(y, r, 16000, ["pesq_wb", "si_snr"])
        assert df.loc[c.id, "pesq_wb"] == pytest.approx(want["pesq_wb"], abs=1e-9)
        assert df.loc[c.id, "longest_burst"] == i + 1
        assert df.loc[c.id, "network_loss"] == pytest.approx((i + 1) / np.ceil(c.num_samples / 320))
    from lossbench.reports import write_report

    assert write_report(tmp_path / "run").exists()


def test_nothing_is_scored_against_the_wrong_reference(folders, tmp_path):
    ref, deg, mask, clips = folders
    a, b, c = (x.id for x in clips)
    sf.write(deg / "stray.wav", np.zeros(8000, np.float32), 16000)
    sf.write(deg / f"{a}.flac", np.zeros(8000, np.float32), 8000)  # another rate
    y, _ = sf.read(deg / f"{b}.flac", dtype="float32")
    sf.write(deg / f"{b}.flac", y[:-160], 16000)  # 10 ms short
    (deg / f"{c}.flac").write_bytes(b"not audio at all")
    (ref / "only-ref.wav").write_bytes((ref / f"{a}.wav").read_bytes())
    df = pd.read_parquet(score_folders(ref, deg, tmp_path / "r1", ["si_snr"])).set_index("clip")
    assert (df["status"] == "error").all()
    assert "no reference named 'stray'" in df.loc["stray", "error"]
    assert "no degraded file named 'only-ref'" in df.loc["only-ref", "error"]
    assert f"{a}.flac is at 8000 Hz but its reference" in df.loc[a, "error"]
    assert "(10.0 ms apart; allowed: 0 ms" in df.loc[b, "error"]
    assert f"{c}.flac: not readable as audio" in df.loc[c, "error"]
    df = pd.read_parquet(score_folders(ref, deg, tmp_path / "r2", ["si_snr"], max_length_diff_ms=10)).set_index("clip")
    assert df.loc[b, "status"] == "ok"
    with pytest.raises(ConfigError, match="unknown metric 'mos'"):
        score_folders(ref, deg, tmp_path / "r3", ["mos"])
    with pytest.raises(ConfigError, match="degraded folder '.*nowhere' does not exist"):
        score_folders(ref, tmp_path / "nowhere", tmp_path / "r4", ["si_snr"])


def test_a_missing_loss_file_is_an_error_row_and_the_cli_reports_each_unscored_pair(folders, tmp_path):
    ref, deg, mask, clips = folders
    (mask / f"{clips[0].id}.txt").unlink()
    res = CliRunner().invoke(app, ["score", str(ref), str(deg), "--out", str(tmp_path / "run"), "--mask", str(mask),
                                   "--metrics", "si_snr", "--no-report"])
    assert res.exit_code == 0, res.output
    assert f"no loss file for '{clips[0].id}'" in res.output and "2 pairs scored, 1 not" in res.output
