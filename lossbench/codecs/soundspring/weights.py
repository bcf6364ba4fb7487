"""Loading the masked LM from its safetensors file (the codec, the concealment head's trainer and the cards read it
here, so that none of them imports another)."""

from __future__ import annotations

from pathlib import Path

from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.concurrency import locked_cache


@locked_cache(4)
def load_mlm(path: str | None = None, backbone: str = DEFAULT_BACKBONE):
    """The masked LM of ``backbone``'s tokens with shipped (or given) safetensors weights, eval mode, CPU,
    frozen for inference; no pickle. A masked LM of another backbone's tokens is refused, naming both."""
    from lossbench.codecs.neural.backbones import load_module
    from lossbench.codecs.soundspring.mlm import MaskedTokenLM, MLMConfig

    model, _ = load_module(backbone, "mlm", path, "masked-LM", "soundspring", "mlm_weights",
                           lambda cfg: MaskedTokenLM(MLMConfig(**cfg)), of="tokens")
    return model.freeze()


def mlm_path(path: str | None, backbone: str = DEFAULT_BACKBONE) -> Path:
    """The masked-LM weights an ``mlm_weights=`` option names, or the backbone's shipped ones."""
    from lossbench.codecs.neural.backbones import backbone_class

    return backbone_class(backbone).shipped_path("mlm", path)
