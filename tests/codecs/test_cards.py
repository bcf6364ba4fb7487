"""The four model-card writers on tiny runs: every training fact comes from the run (summed wall time over
resumed segments, thread counts, the recorded training configuration), the measured tables are filled."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from lossbench.audio import save_audio
from lossbench.corpus import default_corpus


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two held-out 'real' clips of 2.5 s in a prepared-data layout."""
    d = tmp_path_factory.mktemp("carddata")
    lines = []
    for i, r in enumerate(default_corpus()[:2]):
        f = f"valid/{r.id}.flac"
        save_audio(d / f, r.load(16000).samples[:40000], 16000)
        lines.append(json.dumps({"file": f, "split": "valid", "speaker": f"s{i}", "duration_s": 2.5, "source": "test"}))
    (d / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return d


def _run_dir(d, train_cfg: dict, evals: list[dict]):
    """A training run: two resumed segments of 1 h and 0.5 h on 2 threads, a checkpoint with its config."""
    d.mkdir(parents=True, exist_ok=True)
    logs = [{"step": 50, "time_s": 1800.0, "threads": 2}, {"step": 100, "time_s": 3600.0, "threads": 2},
            {"step": 150, "time_s": 900.0, "threads": 2}, {"step": 200, "time_s": 1800.0, "threads": 2}]
    (d / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in logs))
    (d / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
    torch.save({"step": 200, "train_cfg": train_cfg}, d / "ckpt.pt")
    return d


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", line)]


def test_waveform_codec_card(data, tmp_path):
    from lossbench.codecs.neural.card import write_card

    run = _run_dir(tmp_path / "run", {"batch": 3, "seconds": 0.5, "adv_start": 10**9},
                   [{"step": 100, **{f"{m}@{k}": 1.2 for m in ("pesq_wb", "stoi") for k in (3, 6, 12, 24)}}])
    text = write_card(data, run, count=2, out=tmp_path / "card.md").read_text()
    assert "CPU wall time of the runs so far: 1.5 h (on 2 torch threads)" in text
    assert "(batch 3 x 0.5 s)" in text and "(not reached at the step above)" in text
    row = next(x for x in text.splitlines() if x.startswith("| rvq K=12"))
    assert all(np.isfinite(_numbers(row))) and len(_numbers(row)) >= 3


def test_fargan_codec_card(data, tmp_path):
    from lossbench.codecs.neural.card import write_fargan_card
    from tests.conftest import make_tiny_fargan_weights

    w = make_tiny_fargan_weights(tmp_path)
    run = _run_dir(tmp_path / "run", {"batch": 5, "pairs": 7, "feature_weights": [2.0] + [1.0] * 17, "w_corr": 0.5,
                                      "w_commit": 0.1, "dropout": "mid"}, [])
    text = write_fargan_card(data, run, weights=w, count=2, out=tmp_path / "card.md").read_text()
    assert "1.5 h (on 2 torch threads)" in text and "batch 5 crops of 7 frame pairs" in text
    assert "c0 x2, c1..c17 x1" in text and "'mid' (K per example: half uniform over 3..24" in text
    assert "pitch period x8" not in text  # no typed-in text about an older loss
    ceil = next(x for x in text.splitlines() if x.startswith("| unquantised features"))
    assert 1.0 < _numbers(ceil)[0] < 4.7


def test_soundspring_card_on_fargan_tokens(data, tmp_path):
    from safetensors.torch import save_file

    from lossbench.codecs.soundspring.card import write_card
    from lossbench.codecs.soundspring.mlm import MaskedTokenLM, MLMConfig
    from tests.conftest import make_tiny_fargan_weights

    w = make_tiny_fargan_weights(tmp_path)
    torch.manual_seed(0)
    cfg = MLMConfig(dim=32, depth=1, heads=2, ff=64)
    save_file({k: v.contiguous() for k, v in MaskedTokenLM(cfg).state_dict().items()}, str(tmp_path / "mlm.safetensors"),
              metadata={"model_cfg": json.dumps(cfg.to_dict()), "step": "200", "codec_sha": "abc", "backbone": "fargan"})
    run = _run_dir(tmp_path / "run", {"batch": 4, "frames": 50, "lr": 1e-4},
                   [{"step": 200, "bits_fine_mean": 9.9, "bits@4": 9.8, "bits@12": 9.9, "bits@24": 10.0}])
    text = write_card(data, run, count=2, backbone="fargan", mlm_weights=tmp_path / "mlm.safetensors",
                      codec_weights=w, out=tmp_path / "card.md").read_text()
    assert "1.5 h (on 2 torch threads)" in text and "batch of 4 50-frame windows, last lr 0.0001" in text
    assert "the fargan backbone's (codec weights hash abc)" in text and "pitch tokens" in text
    mean = next(x for x in text.splitlines() if x.startswith("| mean"))
    assert all(1.0 < v < 40.0 for v in _numbers(mean))  # an untrained, random LM: worse than 10 bits


def test_glaris_card_on_fargan_latents(data, tmp_path):
    from lossbench.codecs.glaris.card import write_card
    from lossbench.codecs.glaris.model import Glaris, GlarisConfig
    from lossbench.codecs.glaris.train import export_glaris
    from tests.conftest import make_tiny_fargan_weights

    w = make_tiny_fargan_weights(tmp_path)
    gcfg = GlarisConfig(latent_dim=16, y_dim=8, z_dim=8, hidden=32, z_quantizers=3, gain_max=4.0, gain_min=0.25,
                        y_range=64)
    torch.manual_seed(0)
    torch.save({"model": Glaris(gcfg).state_dict(), "step": 200, "model_cfg": gcfg.to_dict(), "codec_sha": "abc",
                "backbone": "fargan"}, tmp_path / "g.pt")
    gw = export_glaris(tmp_path / "g.pt", tmp_path / "g.safetensors")
    run = _run_dir(tmp_path / "run", {"batch": 4, "frames": 24, "max_hours": 2.0},
                   [{"step": 200, "kbps@0": 3.0, "kbps@32": 2.0, "kbps@63": 1.0, "mse@0": 0.5, "mse@32": 0.6,
                     "mse_loss20@32": 0.9}])
    text = write_card(data, run, count=2, backbone="fargan", glaris_weights=gw, codec_weights=w,
                      out=tmp_path / "card.md").read_text()
    assert "1.5 h (on 2 torch threads)" in text and "batches of 4 x 24 frames" in text
    assert "a seeded 2-hour subset" in text and "frozen shipped fargan backbone" in text
    for label in ("| glaris q=0", "| rvq K=12", "| side-info-plc", "| fargan-plc (rvq K=12, for reference)"):
        row = next(x for x in text.splitlines() if x.startswith(label))
        assert all(np.isfinite(_numbers(row))), row
