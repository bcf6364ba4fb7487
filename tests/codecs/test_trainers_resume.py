"""The concealment head's and Glaris stage III's trainers run on training.run_loop: a run stopped and resumed from
its checkpoint ends with the weights of an unbroken run, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.torch import load_file

from lossbench.corpus import default_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech():
    x = np.concatenate([c.load(16000).samples for c in default_corpus()[:3]])
    return x[: x.size // 320 * 320]


def _same(a, b) -> bool:
    sa, sb = load_file(str(a)), load_file(str(b))
    return sa.keys() == sb.keys() and all(bool((sa[k] == sb[k]).all()) for k in sa)


def test_the_coarse_head_resumes_where_it_stopped(speech, tmp_path):
    from lossbench.codecs.neural.backbones import get_backbone
    from lossbench.codecs.soundspring.coarse_head import train_head

    toks = get_backbone("fargan", None).encode(speech, 24).astype(np.int16)
    kw = dict(steps=6, threads=1, progress=False, tokens=toks, valid=toks[-200:])
    whole, ev = train_head(None, tmp_path / "whole.safetensors", ckpt_dir=tmp_path / "a", **kw)
    train_head(None, tmp_path / "half.safetensors", ckpt_dir=tmp_path / "b", **{**kw, "steps": 3})
    resumed, _ = train_head(None, tmp_path / "resumed.safetensors", ckpt_dir=tmp_path / "b", **kw)
    assert _same(whole, resumed)
    assert not _same(whole, tmp_path / "half.safetensors")  # the steps after the stop changed the weights
    assert (tmp_path / "a" / "ckpt.pt").exists() and np.isfinite(list(ev.values())).all()


def test_glaris_stage3_resumes_where_it_stopped(speech, tmp_path):
    from lossbench.codecs.glaris.stage3 import train_stage3
    from lossbench.codecs.neural.backbones import get_backbone

    feats = get_backbone("fargan", None).model.features(speech)
    kw = dict(steps=4, batch=2, pairs=24, threads=1, progress=False, feats=feats, valid=feats)
    whole, ev = train_stage3(None, tmp_path / "whole.safetensors", ckpt_dir=tmp_path / "a", **kw)
    train_stage3(None, tmp_path / "half.safetensors", ckpt_dir=tmp_path / "b", **{**kw, "steps": 2})
    resumed, _ = train_stage3(None, tmp_path / "resumed.safetensors", ckpt_dir=tmp_path / "b", **kw)
    assert _same(whole, resumed)
    assert not _same(whole, tmp_path / "half.safetensors")
    assert np.isfinite(ev["after"]["rec"])
