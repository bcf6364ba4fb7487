"""``lossbench train``: train and export the neural models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.cli.common import console, friendly_errors

app = typer.Typer(help="Train the neural codecs (resumable, seeded).", no_args_is_help=True)


@app.command("codec")
@friendly_errors
def train_codec_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    out: Annotated[Path, typer.Option(help="checkpoint directory (resumes from it)")] = Path("checkpoints/codec"),
    steps: Annotated[int, typer.Option(help="total steps to reach")] = 200_000,
    batch: Annotated[int, typer.Option()] = 16,
    seconds: Annotated[float, typer.Option(help="crop length per example")] = 1.0,
    lr: Annotated[float, typer.Option()] = 5e-4,
    seed: Annotated[int, typer.Option()] = 0,
    adv_start: Annotated[int, typer.Option(help="step at which the adversarial losses start")] = 20_000,
    eval_every: Annotated[int, typer.Option()] = 2000,
    ckpt_every: Annotated[int, typer.Option()] = 500,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads")] = None,
    init_weights: Annotated[Optional[Path], typer.Option(help="warm-start a new run from safetensors weights (e.g. the shipped ones)")] = None,
    backbone: Annotated[str, typer.Option(help="fargan (a quantiser of LPCNet features, voiced by FARGAN) or waveform")] = DEFAULT_BACKBONE,
    max_hours: Annotated[Optional[float], typer.Option(help="stop after this much wall time (resume later)")] = None,
    hidden: Annotated[int, typer.Option(help="fargan: width of the encoder and decoder (a new run only)")] = 256,
    latent_dim: Annotated[int, typer.Option(help="fargan: dimension the RVQ quantises (a new run only)")] = 64,
    skip: Annotated[bool, typer.Option(help="fargan: linear paths around the conv stacks (a new run only)")] = False,
    ae_warmup: Annotated[int, typer.Option(help="fargan: steps on the unquantised latent before the RVQ joins")] = 0,
    dropout: Annotated[str, typer.Option(help="fargan: how quantiser dropout draws K: square (favours few layers) or mid (favours K 6-12)")] = "square",
    until: Annotated[Optional[int], typer.Option(help="fargan: stop at this step, keeping the --steps schedule (training in phases)")] = None,
) -> None:
    """Train the RVQ speech codec: the fargan feature quantiser, or the waveform codec (GPU when present)."""
    if backbone == "fargan":
        from lossbench.codecs.neural.fargan import FarganConfig
        from lossbench.codecs.neural.train_fargan import FarganTrainConfig, train_fargan

        if out == Path("checkpoints/codec"):
            out = Path("checkpoints/codec_fargan")
        fcfg = FarganTrainConfig(steps=steps if steps != 200_000 else FarganTrainConfig.steps, batch=batch if batch != 16
                                 else FarganTrainConfig.batch, lr=lr if lr != 5e-4 else FarganTrainConfig.lr,
                                 seed=seed, eval_every=eval_every, ckpt_every=ckpt_every, ae_warmup=ae_warmup,
                                 dropout=dropout)
        ck = train_fargan(data, out, fcfg, FarganConfig(hidden=hidden, latent_dim=latent_dim, skip=skip), threads=threads,
                          max_hours=max_hours, until=until)
        console.print(f"checkpoint: {ck}")
        return
    if backbone != "waveform":
        from lossbench.errors import ConfigError

        raise ConfigError(f"--backbone must be 'fargan' or 'waveform', got {backbone!r}")
    from lossbench.codecs.neural.train import TrainConfig, train_codec

    cfg = TrainConfig(steps=steps, batch=batch, seconds=seconds, lr=lr, seed=seed, adv_start=adv_start,
                      eval_every=eval_every, ckpt_every=ckpt_every)
    ck = train_codec(data, out, cfg, threads=threads, init_weights=init_weights)
    console.print(f"checkpoint: {ck}")


@app.command("export-codec")
@friendly_errors
def export_codec_cmd(
    ckpt: Annotated[Path, typer.Option(help="training checkpoint")] = Path("checkpoints/codec/ckpt.pt"),
    out: Annotated[Optional[Path], typer.Option(help="safetensors path (default: the shipped weights)")] = None,
) -> None:
    """Export weights only (safetensors: float16 for the waveform backbone, float32 for fargan) for shipping."""
    import torch

    from lossbench.codecs.neural import DEFAULT_WEIGHTS, FARGAN_WEIGHTS
    from lossbench.codecs.neural.train import export_weights

    if ckpt == Path("checkpoints/codec/ckpt.pt") and not ckpt.exists() and Path("checkpoints/codec_fargan/ckpt.pt").exists():
        ckpt = Path("checkpoints/codec_fargan/ckpt.pt")
    if torch.load(ckpt, map_location="cpu", weights_only=False)["model_cfg"].get("backbone") == "fargan":
        from lossbench.codecs.neural.train_fargan import export_fargan

        p = export_fargan(ckpt, out or FARGAN_WEIGHTS)
        console.print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")
        return
    p = export_weights(ckpt, out or DEFAULT_WEIGHTS)
    console.print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")


@app.command("codec-card")
@friendly_errors
def codec_card_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    ckpt_dir: Annotated[Path, typer.Option(help="the training run (for its eval history)")] = Path("checkpoints/codec"),
    clips: Annotated[int, typer.Option(help="held-out clips to score")] = 24,
    backbone: Annotated[str, typer.Option(help="fargan (writes MODEL_CARD_fargan.md) or waveform")] = DEFAULT_BACKBONE,
) -> None:
    """Measure the shipped weights on held-out real speech (and Opus alongside) and write the model card."""
    if backbone == "fargan":
        from lossbench.codecs.neural.card import write_fargan_card

        if ckpt_dir == Path("checkpoints/codec"):
            ckpt_dir = Path("checkpoints/codec_fargan")
        console.print(f"wrote {write_fargan_card(data, ckpt_dir, count=clips)}")
        return
    from lossbench.codecs.neural.card import write_card

    console.print(f"wrote {write_card(data, ckpt_dir, count=clips)}")


@app.command("soundspring")
@friendly_errors
def train_soundspring_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    out: Annotated[Path, typer.Option(help="checkpoint directory (resumes from it)")] = Path("checkpoints/soundspring"),
    steps: Annotated[int, typer.Option()] = 100_000,
    batch: Annotated[int, typer.Option()] = 16,
    frames: Annotated[int, typer.Option(help="frames per training window (20 ms each)")] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    lr: Annotated[float, typer.Option()] = 3e-4,
    max_hours: Annotated[Optional[float], typer.Option(help="tokenize at most this much training audio (a seeded subset)")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads")] = None,
    dim: Annotated[int, typer.Option(help="Transformer width (a new run only; a resumed run keeps its own)")] = 128,
    depth: Annotated[int, typer.Option(help="Transformer blocks (a new run only)")] = 3,
    heads: Annotated[int, typer.Option(help="attention heads (a new run only)")] = 4,
    ff: Annotated[int, typer.Option(help="feed-forward width (a new run only)")] = 512,
    backbone: Annotated[str, typer.Option(help="whose tokens: waveform or fargan")] = DEFAULT_BACKBONE,
) -> None:
    """Train SoundSpring's masked token LM on the shipped codec's tokens (paper's masking schedule).

    The size defaults are the shipped model's (MLMConfig's, written out so that the CLI does not import torch);
    larger models, like the paper's, are a matter of --dim/--depth/--heads/--ff.
    """
    from lossbench.codecs.soundspring.mlm import MLMConfig
    from lossbench.codecs.soundspring.train import MLMTrainConfig, train_mlm

    if backbone == "fargan" and out == Path("checkpoints/soundspring"):
        out = Path("checkpoints/soundspring_fargan")
    ck = train_mlm(data, out, MLMTrainConfig(steps=steps, batch=batch, frames=frames, seed=seed, lr=lr,
                                             max_hours=max_hours, backbone=backbone),
                   MLMConfig(dim=dim, depth=depth, heads=heads, ff=ff), threads=threads)
    console.print(f"checkpoint: {ck}")


@app.command("export-soundspring")
@friendly_errors
def export_soundspring_cmd(
    ckpt: Annotated[Path, typer.Option(help="training checkpoint")] = Path("checkpoints/soundspring/ckpt.pt"),
    out: Annotated[Optional[Path], typer.Option(help="safetensors path (default: the shipped weights)")] = None,
) -> None:
    """Export the masked LM (float16 safetensors) for shipping (to the shipped file of its backbone)."""
    import torch

    from lossbench.codecs.soundspring.codec import mlm_path
    from lossbench.codecs.soundspring.train import export_mlm

    backbone = torch.load(ckpt, map_location="cpu", weights_only=False).get("backbone", "waveform")
    p = export_mlm(ckpt, out or mlm_path(None, backbone))
    console.print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")


@app.command("soundspring-card")
@friendly_errors
def soundspring_card_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    ckpt_dir: Annotated[Path, typer.Option(help="the training run (for its logs)")] = Path("checkpoints/soundspring"),
    clips: Annotated[int, typer.Option(help="held-out clips to score")] = 16,
    backbone: Annotated[str, typer.Option(help="whose tokens: waveform (MODEL_CARD.md) or fargan (MODEL_CARD_fargan.md)")] = DEFAULT_BACKBONE,
) -> None:
    """Measure the shipped masked LM's compression gain on held-out speech and write its model card."""
    from lossbench.codecs.neural import check_backbone
    from lossbench.codecs.soundspring.card import write_card

    check_backbone(backbone)
    if backbone == "fargan" and ckpt_dir == Path("checkpoints/soundspring"):
        ckpt_dir = Path("checkpoints/soundspring_fargan")
    console.print(f"wrote {write_card(data, ckpt_dir, count=clips, backbone=backbone)}")


@app.command("glaris")
@friendly_errors
def train_glaris_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    out: Annotated[Path, typer.Option(help="checkpoint directory (resumes from it)")] = Path("checkpoints/glaris"),
    steps: Annotated[int, typer.Option()] = 30_000,
    batch: Annotated[int, typer.Option()] = 16,
    frames: Annotated[int, typer.Option(help="frames per training window (20 ms each)")] = 96,
    lr: Annotated[float, typer.Option()] = 1e-3,
    alpha: Annotated[float, typer.Option(help="weight of the concealed reconstruction (eq. 9)")] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    max_hours: Annotated[Optional[float], typer.Option(help="tokenize at most this much training audio")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads")] = None,
    y_dim: Annotated[int, typer.Option(help="channels of y per frame (a new run only)")] = 48,
    gain_max: Annotated[float, typer.Option(help="quantisation gain at q = 0 (a new run only)")] = 4.0,
    gain_min: Annotated[float, typer.Option(help="quantisation gain at q = 63 (a new run only)")] = 0.25,
    backbone: Annotated[str, typer.Option(help="whose latents: waveform or fargan")] = DEFAULT_BACKBONE,
) -> None:
    """Train the Glaris transform coding (stage II) on the frozen backbone's latents."""
    from lossbench.codecs.glaris.model import GlarisConfig
    from lossbench.codecs.glaris.train import GlarisTrainConfig, train_glaris
    from lossbench.codecs.neural import check_backbone

    check_backbone(backbone)
    if backbone == "fargan" and out == Path("checkpoints/glaris"):
        out = Path("checkpoints/glaris_fargan")
    cfg = GlarisTrainConfig(steps=steps, batch=batch, frames=frames, lr=lr, alpha=alpha, seed=seed, max_hours=max_hours,
                            backbone=backbone)
    model_cfg = GlarisConfig(y_dim=y_dim, gain_max=gain_max, gain_min=gain_min, y_range=64)
    console.print(f"checkpoint: {train_glaris(data, out, cfg, model_cfg, threads=threads)}")


@app.command("export-glaris")
@friendly_errors
def export_glaris_cmd(
    ckpt: Annotated[Path, typer.Option(help="training checkpoint")] = Path("checkpoints/glaris/ckpt.pt"),
    out: Annotated[Optional[Path], typer.Option(help="safetensors path (default: the shipped weights)")] = None,
) -> None:
    """Export the Glaris modules (float16 safetensors) for shipping (to the shipped file of its backbone)."""
    import torch

    from lossbench.codecs.glaris.codec import glaris_path
    from lossbench.codecs.glaris.train import export_glaris

    backbone = torch.load(ckpt, map_location="cpu", weights_only=False).get("backbone", "waveform")
    p = export_glaris(ckpt, out or glaris_path(None, backbone))
    console.print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")


@app.command("glaris-card")
@friendly_errors
def glaris_card_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    ckpt_dir: Annotated[Path, typer.Option(help="the training run (for its logs)")] = Path("checkpoints/glaris"),
    clips: Annotated[int, typer.Option(help="held-out clips to score")] = 12,
    backbone: Annotated[str, typer.Option(help="waveform (MODEL_CARD.md) or fargan (MODEL_CARD_fargan.md)")] = DEFAULT_BACKBONE,
) -> None:
    """Measure the shipped Glaris modules on held-out speech (rvq alongside) and write their model card."""
    from lossbench.codecs.glaris.card import write_card
    from lossbench.codecs.neural import check_backbone

    check_backbone(backbone)
    if backbone == "fargan" and ckpt_dir == Path("checkpoints/glaris"):
        ckpt_dir = Path("checkpoints/glaris_fargan")
    console.print(f"wrote {write_card(data, ckpt_dir, count=clips, backbone=backbone)}")
