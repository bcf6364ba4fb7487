import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def network_off(monkeypatch):
    """Any socket the code under test opens raises: weights must load with no network."""
    import socket

    import safetensors.torch  # noqa: F401  (imported before the network is switched off)

    def no_net(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_net)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def make_tiny_fargan_weights(directory):
    """A small untrained fargan backbone with real feature statistics, exported as safetensors
    (for tests of the machinery; the shipped weights are used where quality matters)."""
    import torch

    from lossbench.codecs.neural.fargan import FarganBackbone, FarganConfig
    from lossbench.codecs.neural.train_fargan import export_fargan, lloyd_levels
    from lossbench.corpus import default_corpus

    fb = FarganBackbone(FarganConfig(hidden=32, latent_dim=16))
    x = default_corpus()[0].load(16000).samples
    f = fb.features(x[: x.size // 320 * 320])
    fb.net.feat_mean.copy_(torch.from_numpy(f.mean(0)))
    fb.net.feat_std.copy_(torch.from_numpy(f.std(0) + 1e-3))
    fb.net.corr_levels.copy_(torch.from_numpy(lloyd_levels(f[:, 19], 4)))
    torch.save({"model": fb.net.state_dict(), "step": 0, "model_cfg": fb.cfg.to_dict()}, directory / "ckpt.pt")
    return export_fargan(directory / "ckpt.pt", directory / "fargan.safetensors")


def need_tools(*tools: str, installed_by: str = "make test (scripts/install-system-deps.sh --test, as root)") -> None:
    """Skip, naming the missing programs, when any of ``tools`` is not on PATH; under ``CI=true`` fail instead:
    CI runs the set-up that installs them, so a missing one there is a broken set-up, not a smaller machine."""
    import shutil

    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    msg = f"{', '.join(missing)} not installed ({installed_by} installs {'them' if len(missing) > 1 else 'it'})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {msg}")
    pytest.skip(msg)
