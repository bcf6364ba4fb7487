"""The neural codecs' backbones as objects: one registry, one place that knows each backbone.

A *backbone* is what turns audio into RVQ tokens and tokens back into audio.
``rvq``, ``soundspring`` and ``glaris`` all sit on one, chosen by
``backbone=NAME``. Each registered :class:`Backbone` owns

- its shipped weights (codec, masked LM, Glaris modules, model cards) and their loader;
- its token layout: how many leading token layers are exact pitch tokens
  (``pitch_layers``), which travel losslessly and are never transform-coded;
- tokens -> latent (``tokens_to_latent``), latent -> audio (``latent_to_audio``),
  audio -> tokens (``encode``), and on ``fargan`` the feature-domain concealment;
- its name, for error messages and the ``backbone`` column of a run.

::

    audio --encode--> tokens (frames, K) --tokens_to_latent--> latent (frames, D) --latent_to_audio--> audio

No other module compares backbone names. Loading reads safetensors (no
pickle, no network) and leaves torch's global state (grad mode, threads) as
it found it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lossbench.concurrency import locked_cache
from lossbench.errors import CodecError, ConfigError
from lossbench.registry import Registry

NEURAL_DIR = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = NEURAL_DIR / "neural" / "weights"


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


def weights_backbone(meta: dict) -> str:
    """The backbone a weights file was made for (files from before backbones existed are waveform's)."""
    return meta.get("backbone", "waveform")


class Backbone:
    """One backbone with its loaded codec weights (see the module docstring).

    Class attributes describe the backbone without loading anything (trainers,
    cards and the CLI read them); an instance holds the model of one weights
    file. Get instances with :func:`get_backbone` (cached per process).
    """

    name: ClassVar[str]
    #: leading token layers that are exact pitch tokens (sent losslessly; not part of Glaris's coded latent)
    pitch_layers: ClassVar[int] = 0
    #: whether ``conceal_features`` exists (Opus 1.5's deep-PLC predictor on LPCNet features)
    feature_plc: ClassVar[bool] = False
    #: shipped files by role: codec weights, the masked LM, the Glaris modules
    shipped: ClassVar[dict[str, Path]]
    #: the model cards' file name
    card_name: ClassVar[str]
    #: what the model cards say of the token layout (empty: nothing beyond the RVQ)
    token_note: ClassVar[str] = ""
    #: what the Glaris card says the coded latent is (empty: the whole RVQ latent)
    latent_note: ClassVar[str] = ""

    def __init__(self, model, weights: Path) -> None:
        self.model = model
        self.weights = weights

    # ------------------------------------------------------------------ without weights

    @classmethod
    def shipped_path(cls, role: str, path: str | Path | None = None) -> Path:
        """The file a ``*weights=`` option names, or this backbone's shipped file for ``role``."""
        if path:
            return Path(path)
        if role not in cls.shipped:
            raise ConfigError(f"backbone {cls.name!r} ships no {role!r} weights; valid roles: "
                              f"{', '.join(cls.shipped)}")
        return cls.shipped[role]

    @classmethod
    def train_command(cls, what: str) -> str:
        """The command that trains ``what`` (codec, soundspring, glaris, ...) on this backbone."""
        return f"lossbench train {what} --backbone {cls.name}"

    @classmethod
    def checkpoint_dir(cls, what: str) -> Path:
        """The default checkpoint directory of training ``what`` (codec, soundspring, glaris) on this backbone."""
        return Path("checkpoints") / f"{what}_{cls.name}"

    @classmethod
    def train_codec(cls, data: Path, out: Path, threads: int | None, **options: Any) -> Path:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def export_codec(cls, ckpt: Path, dest: Path | None) -> Path:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def check_meta(cls, meta: dict, p: Path, what: str, option: str, of: str = "") -> None:
        """Refuse weights made for another backbone, naming both (``of``: "tokens", "latents", or "" for the
        codec itself)."""
        got = weights_backbone(meta)
        if got != cls.name:
            tail = f" backbone's {of}" if of else " backbone"
            raise ConfigError(f"{p} holds {what} of the {got!r}{tail}, not of the {cls.name!r}{tail} asked for; "
                              f"give backbone={got} or other {option}")

    @classmethod
    def load_model(cls, p: Path, meta: dict, tensors: dict):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ shape of the signal

    @property
    def sample_rate_hz(self) -> int:
        return int(self.model.cfg.sample_rate_hz)

    @property
    def hop(self) -> int:
        """Samples per token frame."""
        return int(self.model.cfg.hop)

    @property
    def num_quantizers(self) -> int:
        return int(self.model.cfg.num_quantizers)

    @property
    def latent_size(self) -> int:
        return int(self.model.latent_size)

    @property
    def delay_samples(self) -> int:
        return int(self.model.delay_samples)

    @property
    def frame_offset_samples(self) -> int:
        """Where token frame i's samples start in ``latent_to_audio`` output: i * hop + this."""
        return int(self.model.frame_offset_samples)

    @property
    def decoder_lookahead_frames(self) -> int:
        """Token frames after frame i whose latents frame i's output samples depend on: the output delay
        (``delay_samples``) rounded up to whole frames (1 on both backbones; the causality test of
        ``tests/codecs/test_soundspring_latency.py`` checks it on the decoder itself)."""
        return -(-self.delay_samples // self.hop)

    @property
    def quantizer(self):
        return self.model.quantizer

    def layer_tables(self) -> list:
        """Per layer, what each token adds to the latent: torch (V, latent_size)."""
        return self.model.layer_tables()

    def rvq_layers(self) -> list:
        """The residual-VQ layer modules past the pitch tokens (their ``embed`` are the code vectors)."""
        return list(self.model.quantizer.layers)

    # ------------------------------------------------------------------ the transforms

    def encode(self, samples: np.ndarray, k: int | None = None) -> np.ndarray:
        """Audio (a whole number of frames) -> int64 tokens (frames, k)."""
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).view(1, 1, -1)
            return self.model.encode(x, k)[0].numpy().T.astype(np.int64)

    def encode_torch(self, x, k: int | None = None):
        """(B, 1, n) torch audio -> (B, k, frames) torch tokens (trainers)."""
        import torch

        with torch.no_grad():
            return self.model.encode(x, k)

    def tokens_to_latent(self, tokens: np.ndarray) -> np.ndarray:
        """int tokens (frames, k), the first k layers -> float32 latent (frames, latent_size)."""
        import torch

        with torch.no_grad():
            z = self.model.quantizer.decode(torch.from_numpy(np.asarray(tokens, np.int64).T.copy()).unsqueeze(0))
        return z[0].numpy().T.astype(np.float32)

    def latent_to_tokens(self, latent: np.ndarray, k: int | None = None) -> np.ndarray:
        """float latent (frames, latent_size) -> int64 tokens (frames, k): the residual VQ's greedy codes."""
        import torch

        with torch.no_grad():
            z = torch.from_numpy(np.asarray(latent, np.float32).T.copy()).unsqueeze(0)
            return self.model.quantizer.encode(z, k)[0].numpy().T.astype(np.int64)

    def latent_to_audio(self, latent: np.ndarray, decoder_net=None) -> np.ndarray:
        """float latent (frames, latent_size) -> float32 audio, before the codec delay is removed.

        ``decoder_net`` (fargan only): a fine-tuned feature decoder in place of the shipped one (Glaris's
        stage III)."""
        import torch

        with torch.no_grad():
            z = torch.from_numpy(np.asarray(latent).T.astype(np.float32)).unsqueeze(0)
            if decoder_net is not None:
                if self.name != "fargan":
                    raise ConfigError(f"backbone {self.name!r} takes no replacement decoder")
                return self.model.decoder(z, decoder_net)[0, 0].numpy()
            return self.model.decoder(z)[0, 0].numpy()

    @classmethod
    def pitch_token_table(cls) -> tuple[np.ndarray, np.ndarray] | None:
        """Per token id of a pitch layer, (its pitch period in samples, its correlation level); -1 for ids
        that are not used. None for a backbone without pitch tokens."""
        return None

    def pitch_latent(self, pitch_tokens: np.ndarray) -> np.ndarray:
        """The latent rows the pitch tokens (frames, pitch_layers) write, (frames, latent_size - coded part)."""
        raise ConfigError(f"backbone {self.name!r} has no pitch tokens")

    def conceal_features(self, latent: np.ndarray, lost: np.ndarray) -> np.ndarray:
        """Audio for ``latent`` (frames, D) with the ``lost`` frames' features predicted (deep PLC)."""
        raise ConfigError(f"backbone {self.name!r} has no feature-domain concealment; it needs the fargan "
                          f"backbone")


BACKBONES: Registry[type[Backbone]] = Registry("backbone")


@BACKBONES.register("waveform")
class WaveformBackbone(Backbone):
    """The project's conv encoder, residual VQ and iSTFT decoder (``NeuralCodec``)."""

    name = "waveform"
    shipped = {"codec": WEIGHTS_DIR / "rvq_codec.safetensors",
               "mlm": NEURAL_DIR / "soundspring" / "weights" / "mlm.safetensors",
               "glaris": NEURAL_DIR / "glaris" / "weights" / "glaris.safetensors"}
    card_name = "MODEL_CARD.md"

    @classmethod
    def checkpoint_dir(cls, what: str) -> Path:
        return Path("checkpoints") / what  # the first backbone's runs kept the plain names

    @classmethod
    def train_codec(cls, data: Path, out: Path, threads: int | None, **options: Any) -> Path:
        from lossbench.codecs.neural.train import TrainConfig, train_codec

        init = options.pop("init_weights", None)
        keys = ("steps", "batch", "seconds", "lr", "seed", "adv_start", "eval_every", "ckpt_every")
        cfg = TrainConfig(**{k: options[k] for k in keys if options.get(k) is not None})
        return train_codec(data, out, cfg, threads=threads, init_weights=init)

    @classmethod
    def export_codec(cls, ckpt: Path, dest: Path | None) -> Path:
        from lossbench.codecs.neural.train import export_weights

        return export_weights(ckpt, dest or cls.shipped["codec"])

    @classmethod
    def load_model(cls, p: Path, meta: dict, tensors: dict):
        import torch

        from lossbench.codecs.neural.model import CodecConfig, NeuralCodec

        model = NeuralCodec(CodecConfig.from_dict(json.loads(meta["model_cfg"])))
        load_state(model, tensors, p)
        for cb in model.quantizer.codebooks:
            cb.initted.fill_(True)
        model.eval()
        with torch.no_grad():
            fold_weight_norm(model)
        return model


@BACKBONES.register("fargan")
class FarganFeatureBackbone(Backbone):
    """A quantiser of LPCNet features voiced by Opus 1.5's pretrained FARGAN (``FarganBackbone``).

    Token layers 0 and 1 are the two 10 ms frames' exact pitch period and
    correlation level; layers 2.. are the residual VQ of the learned latent.
    """

    name = "fargan"
    pitch_layers = 2
    feature_plc = True
    shipped = {"codec": WEIGHTS_DIR / "fargan_codec.safetensors",
               "mlm": NEURAL_DIR / "soundspring" / "weights" / "mlm_fargan.safetensors",
               "glaris": NEURAL_DIR / "glaris" / "weights" / "glaris_fargan.safetensors",
               "coarse_head": NEURAL_DIR / "soundspring" / "weights" / "coarse_head_fargan.safetensors",
               "glaris_decoder": NEURAL_DIR / "glaris" / "weights" / "glaris_decoder_fargan.safetensors",
               "token_freq": NEURAL_DIR / "soundspring" / "weights" / "token_freq_fargan.safetensors"}
    card_name = "MODEL_CARD_fargan.md"
    token_note = " Layers 1-2 are the pitch tokens (period x 4 correlation levels, 896 of 1024 ids used)."
    latent_note = ("- l: the RVQ part of the fargan quantiser's latent (layers 2..23, 64-d); the two pitch tokens per "
                   "frame travel losslessly with z (and its FEC copies), 20 bits per frame;")

    @classmethod
    def train_codec(cls, data: Path, out: Path, threads: int | None, **options: Any) -> Path:
        from lossbench.codecs.neural.fargan import FarganConfig
        from lossbench.codecs.neural.train_fargan import FarganTrainConfig, train_fargan

        keys = ("steps", "batch", "lr", "seed", "eval_every", "ckpt_every", "ae_warmup", "dropout")
        fcfg = FarganTrainConfig(**{k: options[k] for k in keys if options.get(k) is not None})
        arch = {k: options[k] for k in ("hidden", "latent_dim", "skip") if options.get(k) is not None}
        return train_fargan(data, out, fcfg, FarganConfig(**arch), threads=threads,
                            max_hours=options.get("max_hours"), until=options.get("until"))

    @classmethod
    def export_codec(cls, ckpt: Path, dest: Path | None) -> Path:
        from lossbench.codecs.neural.train_fargan import export_fargan

        return export_fargan(ckpt, dest or cls.shipped["codec"])

    @classmethod
    def load_model(cls, p: Path, meta: dict, tensors: dict):
        from lossbench.codecs.neural.fargan import FarganBackbone, FarganConfig

        fb = FarganBackbone(FarganConfig.from_dict(json.loads(meta["model_cfg"])))
        load_state(fb.net, tensors, p)
        for cb in fb.net.quantizer.codebooks:
            cb.initted.fill_(True)
        fb.eval()
        return fb

    def rvq_layers(self) -> list:
        return list(self.model.quantizer.rvq.layers)

    def latent_to_tokens(self, latent: np.ndarray, k: int | None = None) -> np.ndarray:
        """The pitch tokens back from the latent's pitch rows (nearest period and correlation level), then the
        residual VQ's greedy codes of its learned part."""
        import torch

        from lossbench.codecs.neural.fargan import CORR_LEVELS, PERIOD_MIN, period_of

        net, P = self.model.net, self.pitch_layers
        k = self.num_quantizers if k is None else k
        D = net.cfg.latent_dim
        lat = torch.from_numpy(np.asarray(latent, np.float32).T.copy()).unsqueeze(0)  # (1, D + 2P, T)
        with torch.no_grad():
            pitch = []
            for j in range(P):
                feat = lat[:, D + 2 * j] * net.feat_std[18] + net.feat_mean[18]
                corr = lat[:, D + 2 * j + 1] * net.feat_std[19] + net.feat_mean[19]
                level = (corr[..., None] - net.corr_levels).abs().argmin(-1)
                pitch.append((period_of(feat).long() - PERIOD_MIN) * CORR_LEVELS + level)
            tokens = self.model.quantizer.encode_parts(torch.stack(pitch, 1), lat[:, :D], k)
        return tokens[0].numpy().T.astype(np.int64)

    @classmethod
    def pitch_token_table(cls) -> tuple[np.ndarray, np.ndarray]:
        from lossbench.codecs.neural.fargan import CORR_LEVELS, PERIOD_LEVELS, PERIOD_MIN

        ids = np.arange(1024)
        used = ids < PERIOD_LEVELS * CORR_LEVELS
        return np.where(used, ids // CORR_LEVELS + PERIOD_MIN, -1), np.where(used, ids % CORR_LEVELS, -1)

    def pitch_latent(self, pitch_tokens: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            t = torch.from_numpy(np.asarray(pitch_tokens, np.int64).T.copy()).unsqueeze(0)
            return self.model.net.pitch_values(t)[0].numpy().T

    def conceal_features(self, latent: np.ndarray, lost: np.ndarray, with_features: bool = False):
        """Audio for ``latent`` with the ``lost`` frames' features predicted by Opus's deep PLC; with
        ``with_features`` also the (2 frames, 20) LPCNet features it voiced."""
        import torch

        from lossbench.codecs.neural.fargan_plc import conceal_features

        net = self.model.net
        with torch.no_grad():
            lat = torch.from_numpy(np.asarray(latent, np.float32).T.copy())[None]
            feats = net.denormalise(net.decode_latent(lat))[0].numpy()
        return conceal_features(self.model, feats, np.repeat(lost, self.model.cfg.frames_per_hop), with_features)


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


def backbone_class(name: str) -> type[Backbone]:
    """The registered backbone ``name`` (a ConfigError naming the valid ones otherwise)."""
    if not isinstance(name, str) or name not in BACKBONES:
        raise ConfigError(f"backbone must be one of {', '.join(BACKBONES.names())}, got {name!r}")
    return BACKBONES.get(name)


def backbone_names() -> list[str]:
    return BACKBONES.names()


@locked_cache(8)
def _load(name: str, path: str | None) -> Backbone:
    cls = backbone_class(name)
    p = cls.shipped_path("codec", path)
    meta, tensors = read_weights(p, "codec", cls.train_command("codec"))
    cls.check_meta(meta, p, "codec weights", "weights")
    return cls(cls.load_model(p, meta, tensors), p)


def get_backbone(name: str | Backbone, weights: str | Path | None = None) -> Backbone:
    """The backbone ``name`` with the shipped (or given) codec weights, loaded once per process."""
    if isinstance(name, Backbone):
        return name
    return _load(backbone_class(name).name, str(weights) if weights else None)


get_backbone.cache_clear = _load.cache_clear  # type: ignore[attr-defined]  # the loader's cache, clearable by tests


def load_module(backbone: str, role: str, path: str | Path | None, what: str, train_what: str, option: str,
                build: Any, of: str = "") -> tuple[Any, dict]:
    """A model trained on a backbone's tokens or latents (the masked LM, the Glaris modules).

    Reads the role's safetensors (``path`` or the shipped file), refuses one of
    another backbone, builds the module with ``build(model_cfg dict)``, loads
    the tensors and puts it in eval mode. Returns (module, metadata).
    """
    cls = backbone_class(backbone)
    p = cls.shipped_path(role, path)
    meta, tensors = read_weights(p, what, cls.train_command(train_what))
    cls.check_meta(meta, p, what, option, of)
    module = build(json.loads(meta["model_cfg"]))
    load_state(module, tensors, p)
    module.eval()
    module.codec_sha = meta.get("codec_sha", "")
    return module, meta
