"""The neural RVQ codec backbone (torch), its training and its shipped weights.

torch is imported only when a neural codec is used.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from lossbench.errors import CodecError

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "rvq_codec.safetensors"
FARGAN_WEIGHTS = WEIGHTS_DIR / "fargan_codec.safetensors"
BACKBONES = ("fargan", "waveform")
#: the backbone the neural codecs (rvq, soundspring, glaris), their trainers and cards use unless told otherwise
DEFAULT_BACKBONE = "fargan"


def check_backbone(backbone: str) -> str:
    """``backbone`` if it names one, else a ConfigError naming the allowed ones."""
    from lossbench.errors import ConfigError

    if backbone not in BACKBONES:
        raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    return backbone


def weights_path(path: str | Path | None, backbone: str = DEFAULT_BACKBONE) -> Path:
    """The codec weights a ``weights=`` option names: the given file, or the backbone's shipped one."""
    if path:
        return Path(path)
    return FARGAN_WEIGHTS if backbone == "fargan" else DEFAULT_WEIGHTS


def weights_backbone(meta: dict) -> str:
    """The backbone a weights file was trained for (files from before backbones existed are waveform)."""
    return meta.get("backbone", "waveform")


def read_weights(p: Path, what: str, train_cmd: str) -> tuple[dict, dict]:
    """(metadata, tensors) of a safetensors file: no pickle, no network."""
    from safetensors import safe_open

    if not p.exists():
        raise CodecError(f"{what} weights not found at {p}; train them with '{train_cmd}' and export them")
    with safe_open(str(p), framework="pt") as f:
        return f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}


def load_state(model, tensors: dict, p: Path) -> None:
    """Copy ``tensors`` into ``model`` (cast to its dtypes); a tensor the model lacks is an error."""
    state = model.state_dict()
    for k, v in tensors.items():
        if k not in state:
            raise CodecError(f"{p}: unexpected tensor {k!r}")
        state[k] = v.to(state[k].dtype)
    model.load_state_dict(state)


@functools.lru_cache(maxsize=8)
def load_model(path: str | None = None, backbone: str = DEFAULT_BACKBONE):
    """The codec model of ``backbone`` with shipped (or given) safetensors weights, in eval mode, on the CPU.

    No network and no pickle: weights are read with safetensors, the model
    configuration from the file's metadata. Weights of the other backbone are
    refused with an error naming both.
    """
    import torch

    from lossbench.codecs.neural.model import CodecConfig, NeuralCodec
    from lossbench.errors import ConfigError

    check_backbone(backbone)
    p = weights_path(path, backbone)
    train = "lossbench train codec --backbone fargan" if backbone == "fargan" else "lossbench train codec"
    meta, tensors = read_weights(p, "codec", train)
    if weights_backbone(meta) != backbone:
        raise ConfigError(f"{p} holds weights of the {weights_backbone(meta)!r} backbone, not of the {backbone!r} "
                          f"backbone asked for; give backbone={weights_backbone(meta)} or other weights")
    if backbone == "fargan":
        from lossbench.codecs.neural.fargan import FarganBackbone, FarganConfig

        fb = FarganBackbone(FarganConfig.from_dict(json.loads(meta["model_cfg"])))
        load_state(fb.net, tensors, p)
        for layer in fb.net.quantizer.layers:
            layer.initted.fill_(True)
        fb.eval()
        return fb
    model = NeuralCodec(CodecConfig.from_dict(json.loads(meta["model_cfg"])))
    load_state(model, tensors, p)
    for layer in model.quantizer.layers:
        layer.initted.fill_(True)
    model.eval()
    fold_weight_norm(model)
    torch.set_grad_enabled(True)
    return model


def fold_weight_norm(model) -> None:
    """Replace every weight-norm parametrisation by the weight it computes (inference only).

    The parametrised weight g * v / |v| is otherwise recomputed on every call,
    which dominates a streaming decoder that runs a few frames at a time. The
    folded weight is the same tensor the parametrisation returns, so outputs
    do not change.
    """
    from torch.nn.utils import parametrize

    for m in model.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
