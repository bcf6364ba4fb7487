"""The neural RVQ codec backbones (torch), their training and their shipped weights.

:mod:`lossbench.codecs.neural.backbones` holds the registry: each backbone
owns its weights, its token layout and its transforms. torch is imported
only when a neural codec is used.
"""

from __future__ import annotations

from pathlib import Path

from lossbench.codecs.neural.backbones import (
    BACKBONES,
    WEIGHTS_DIR,
    Backbone,
    backbone_class,
    backbone_names,
    fold_weight_norm,
    get_backbone,
    load_state,
    read_weights,
    weights_backbone,
)

#: the backbone the neural codecs (rvq, soundspring, glaris), their trainers and cards use unless told otherwise
DEFAULT_BACKBONE = "fargan"


def check_backbone(backbone: str) -> str:
    """The registered name of ``backbone``, else a ConfigError naming the allowed ones."""
    return backbone_class(backbone).name


def weights_path(path: str | Path | None, backbone: str = DEFAULT_BACKBONE) -> Path:
    """The codec weights a ``weights=`` option names: the given file, or the backbone's shipped one."""
    return backbone_class(backbone).shipped_path("codec", path)


def load_model(path: str | None = None, backbone: str = DEFAULT_BACKBONE):
    """The torch model of ``backbone`` with shipped (or given) weights, eval mode, CPU (cached per process)."""
    return get_backbone(backbone, path).model


load_model.cache_clear = get_backbone.cache_clear  # type: ignore[attr-defined]  # the cache it shares, clearable here too

__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "WEIGHTS_DIR", "Backbone", "backbone_names", "check_backbone",
           "fold_weight_norm", "get_backbone", "load_model", "load_state", "read_weights", "weights_backbone",
           "weights_path"]
