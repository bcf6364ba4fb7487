"""SoundSpring's masked LM: the paper's masking schedule and resumable, deterministic training."""

import json

import numpy as np
import pytest
import torch

from lossbench.codecs.soundspring.mlm import ABSENT, MaskedTokenLM, MLMConfig, beta, masked_batch, sample_mask
from lossbench.codecs.soundspring.train import MLMTrainConfig, bits_per_fine_token, train_mlm

CFG = MLMConfig(num_quantizers=6, vocab=16, n_coarse=2, dim=32, depth=1, heads=2, ff=64, max_frames=64)


def test_masking_schedule_follows_the_paper():
    assert beta(0.0) == 1.0 and abs(beta(1.0)) < 1e-12 and abs(beta(0.5) - 0.5) < 1e-12
    rng = np.random.default_rng(0)
    Ks, fracs = [], []
    for _ in range(2000):
        K, m = sample_mask(40, CFG, rng)
        Ks.append(K)
        rows = m.any(1)
        fracs.append(rows.mean())
        assert not m[:, K:].any()  # nothing above K is masked (it is absent)
        if rows.any():
            layers = np.flatnonzero(m[rows][0])
            assert layers[-1] == K - 1 and (np.diff(layers) == 1).all()  # layers k..K, contiguous
            assert (m[rows] == m[rows][0]).all()  # the same layers in every chosen frame
    assert set(Ks) == set(range(CFG.n_coarse, CFG.num_quantizers + 1))
    assert abs(np.mean(fracs) - 0.5) < 0.03  # E[beta(tau)] = 1/2


def test_batch_inputs_mark_mask_and_absent():
    rng = np.random.default_rng(1)
    toks = rng.integers(0, 16, (4, 20, 6))
    inp, tgt, lm = masked_batch(toks, CFG, rng)
    assert (inp[lm] == CFG.mask_id).all() and torch.equal(tgt, torch.from_numpy(toks))
    assert ((inp == ABSENT) | (inp == CFG.mask_id) | (inp == tgt)).all()
    logits = MaskedTokenLM(CFG)(inp)
    assert logits.shape == (4, 20, 6, 16)


def test_training_learns_is_deterministic_and_resumes(tmp_path):
    rng = np.random.default_rng(2)
    # tokens with structure: the fine layers are a function of the first coarse layer
    T = 3000
    base = rng.integers(0, 16, (T, 2))
    toks = np.concatenate([base, (base[:, :1] + np.arange(4)[None]) % 16], 1)
    kw = dict(batch=8, frames=24, ckpt_every=20, eval_every=1000, lr=3e-3, warmup=10)
    train_mlm(tmp_path, tmp_path / "a", MLMTrainConfig(steps=150, **kw), CFG, toks, toks, threads=1, progress=False)
    train_mlm(tmp_path, tmp_path / "b", MLMTrainConfig(steps=100, **kw), CFG, toks, toks, threads=1, progress=False)
    other = MLMConfig(**{**CFG.to_dict(), "dim": 48})  # a resumed run keeps the size it was started with
    train_mlm(tmp_path, tmp_path / "b", MLMTrainConfig(steps=150, **kw), other, toks, toks, threads=1, progress=False)
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ev = [json.loads(x) for x in (tmp_path / "a" / "eval.jsonl").read_text().splitlines()]
    assert ev[-1]["step"] == 150 and ev[-1]["bits_fine_mean"] < 2.0  # below log2(16) = 4 bits
    m = MaskedTokenLM(CFG)
    assert bits_per_fine_token(m, toks, 24)["bits_fine_mean"] > 3.5  # an untrained model is near 4 bits


def test_training_goes_on_from_exported_weights(tmp_path):
    """--init: a new run starts from an exported model's weights and step (a shipped model trained further)."""
    from lossbench.codecs.soundspring.train import export_mlm
    from lossbench.errors import ConfigError

    toks = np.random.default_rng(3).integers(0, 16, (800, 6))
    kw = dict(batch=4, frames=24, ckpt_every=10, eval_every=1000, lr=1e-3, warmup=1)
    train_mlm(tmp_path, tmp_path / "a", MLMTrainConfig(steps=20, **kw), CFG, toks, toks, threads=1, progress=False)
    exported = export_mlm(tmp_path / "a" / "ckpt.pt", tmp_path / "a.safetensors")
    cfg = MLMTrainConfig(steps=20, init=str(exported), **kw)
    train_mlm(tmp_path, tmp_path / "b", cfg, MLMConfig(), toks, toks, threads=1, progress=False)  # its size, not this
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    assert b["step"] == 20 and b["model_cfg"] == CFG.to_dict()  # nothing left to do: the exported step was 20
    for k in a["model"]:  # the float16 export, read back
        assert torch.allclose(a["model"][k], b["model"][k], atol=2e-3), k
    cfg = MLMTrainConfig(steps=30, init=str(exported), **kw)
    train_mlm(tmp_path, tmp_path / "c", cfg, CFG, toks, toks, threads=1, progress=False)
    assert torch.load(tmp_path / "c" / "ckpt.pt", weights_only=False)["step"] == 30
    with pytest.raises(ConfigError, match="backbone"):
        train_mlm(tmp_path, tmp_path / "d", MLMTrainConfig(steps=30, init=str(exported), backbone="waveform", **kw),
                  CFG, toks, toks, threads=1, progress=False)


def test_hidden_at_frames_equals_the_full_pass():
    """The coder's shortcut (last block computed at the coded frames only) gives the full pass's states there."""
    torch.manual_seed(0)
    m = MaskedTokenLM(MLMConfig(**{**CFG.to_dict(), "depth": 3})).eval()
    tok = torch.randint(0, 17, (2, 20, 6))
    tok[:, :, 4:] = ABSENT
    fr = torch.tensor([3, 11, 12])
    with torch.no_grad():
        full = m.hidden(tok)
        part = m.hidden(tok, fr)
        assert part.shape == (2, 3, CFG.dim)
        assert torch.allclose(part, full[:, fr], atol=1e-5)
        assert torch.allclose(m(tok, fr, torch.tensor([2, 3])), m(tok)[:, fr][:, :, 2:4], atol=1e-4)
        m.freeze()  # the compiled path: the same states, and the same bits on every call
        assert m._frozen_body() is not None
        frozen = m.hidden(tok, fr)
        assert torch.allclose(frozen, full[:, fr], atol=1e-5)
        assert all(torch.equal(m.hidden(tok, fr), frozen) for _ in range(5))
        m.norm.weight.mul_(2.0)  # changed weights: back to the eager path
        assert m._frozen_body() is None
        assert not torch.allclose(m.hidden(tok, fr), frozen, atol=1e-3)


def test_concealment_time_masks_are_a_contiguous_gap_at_the_window_end():
    from lossbench.codecs.soundspring.mlm import ConcealMasks, MLMConfig, masked_batch, sample_conceal_mask

    cfg = MLMConfig(dim=32, depth=1, heads=2, ff=64)
    cm = ConcealMasks(fraction=1.0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        K, m, w0 = sample_conceal_mask(100, cfg, cm, rng)
        frames = np.flatnonzero(m.any(1))
        assert K in cm.ks and 1 <= frames.size <= cm.max_gap
        assert np.array_equal(frames, np.arange(frames[0], frames[-1] + 1))  # contiguous
        assert w0 + cm.window - cm.tail <= frames[-1] + 1 <= w0 + cm.window  # ends in the window's tail
        layers = np.flatnonzero(m.any(0))
        assert layers[-1] == K - 1 and layers[0] in (0, cfg.n_coarse)  # Case 1 (all) or Case 3 (fine only)
    tok = np.random.default_rng(1).integers(0, 1024, (8, 100, 24))
    inp, tgt, lm = masked_batch(tok, cfg, np.random.default_rng(2), cm)
    for b in range(8):  # frames outside the example's window are absent, masked ones [MASK]
        present = np.flatnonzero((inp[b] >= 0).numpy().any(1))
        assert present.size == cm.window and lm[b].any()


def test_ordinal_pitch_targets_favour_near_periods_of_the_same_correlation():
    import torch

    from lossbench.codecs.neural.backbones import backbone_class
    from lossbench.codecs.soundspring.mlm import ordinal_targets

    per, corr = (torch.from_numpy(a) for a in backbone_class("fargan").pitch_token_table())
    true = 4 * 70 + 2  # period 102, correlation level 2
    t = ordinal_targets(torch.tensor([true]), per, corr, 1.5, 0.5)[0]
    assert float(t.sum()) == pytest.approx(1.0)
    assert t[true] > t[4 * 71 + 2] > t[4 * 73 + 2] > 0  # 102 > 103 > 105
    assert float(t[4 * 71 + 1]) == 0.0 and float(t[1000]) == 0.0  # another correlation level, an unused id
