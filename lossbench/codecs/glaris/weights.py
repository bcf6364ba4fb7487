"""Loading the Glaris modules and the stage-III decoder from their safetensors files (the codec and the trainers
read them here, so that neither imports the other)."""

from __future__ import annotations

import copy
from pathlib import Path

from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.concurrency import locked_cache
from lossbench.errors import ConfigError


def glaris_path(path: str | None, backbone: str = DEFAULT_BACKBONE) -> Path:
    """The Glaris weights a ``glaris_weights=`` option names, or the backbone's shipped ones."""
    from lossbench.codecs.neural.backbones import backbone_class

    return backbone_class(backbone).shipped_path("glaris", path)


@locked_cache(4)
def load_glaris(path: str | None = None, backbone: str = DEFAULT_BACKBONE):
    """The Glaris modules with shipped (or given) safetensors weights, eval mode, CPU; no pickle.

    Weights trained on the other backbone's latents are refused, naming both.
    """
    from lossbench.codecs.glaris.model import Glaris, GlarisConfig
    from lossbench.codecs.neural.backbones import load_module

    model, _ = load_module(backbone, "glaris", path, "Glaris modules", "glaris", "glaris_weights",
                           lambda cfg: Glaris(GlarisConfig(**cfg)), of="latents")
    for layer in model.z_rvq.layers:
        layer.initted.fill_(True)
    return model


def load_stage3_decoder(glaris_weights: str | None = None, backbone: str = DEFAULT_BACKBONE):
    """The backbone's shipped stage-III decoder module for the shipped Glaris (None where the backbone ships none,
    or where ``glaris_weights`` names other Glaris modules: it is fine-tuned to one set)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from lossbench.codecs.neural.backbones import backbone_class, get_backbone
    from lossbench.files import file_hash

    bc = backbone_class(backbone)
    p = bc.shipped.get("glaris_decoder")
    if p is None or not p.exists():
        return None
    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("glaris_sha") != file_hash(glaris_path(glaris_weights, backbone)):
        return None
    net = get_backbone(backbone, None).model.net
    dec = copy.deepcopy(net.decoder_net)
    dec.load_state_dict({k: v.float() for k, v in load_file(str(p)).items()})
    for prm in dec.parameters():
        prm.requires_grad_(False)
    return dec.eval()


def check_stage3_option(v: str) -> str:
    if v not in ("stage3", "backbone"):
        raise ConfigError(f"glaris: decoder must be 'stage3' (the fine-tuned decoder, where shipped) or "
                          f"'backbone' (the backbone's own), got {v!r}")
    return v
