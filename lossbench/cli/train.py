"""``lossbench train``: train and export the neural models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lossbench.cli.common import console, friendly_errors
from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.codecs.neural.backbones import backbone_class

app = typer.Typer(help="Train the neural codecs (resumable, seeded).", no_args_is_help=True)


@app.command("codec")
@friendly_errors
def train_codec_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    out: Annotated[Path | None, typer.Option(help="checkpoint directory (resumes from it; default: "
                                                  "checkpoints/codec_<backbone>, checkpoints/codec for waveform)")] = None,
    steps: Annotated[int | None, typer.Option(help="total steps to reach (default: the backbone's recipe, 60000 "
                                                   "fargan / 200000 waveform)")] = None,
    batch: Annotated[int | None, typer.Option(help="default: 32 fargan / 16 waveform")] = None,
    seconds: Annotated[float, typer.Option(help="waveform: crop length per example")] = 1.0,
    lr: Annotated[float | None, typer.Option(help="default: 1e-3 fargan / 5e-4 waveform")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    adv_start: Annotated[int, typer.Option(help="step at which the adversarial losses start")] = 20_000,
    eval_every: Annotated[int, typer.Option()] = 2000,
    ckpt_every: Annotated[int, typer.Option()] = 500,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    init_weights: Annotated[Path | None, typer.Option(help="warm-start a new run from safetensors weights (e.g. the "
                                                           "shipped ones)")] = None,
    backbone: Annotated[str, typer.Option(
        help="fargan (a quantiser of LPCNet features, voiced by FARGAN) or waveform")] = DEFAULT_BACKBONE,
    max_hours: Annotated[float | None, typer.Option(help="stop after this much wall time (resume later)")] = None,
    hidden: Annotated[int, typer.Option(help="fargan: width of the encoder and decoder (a new run only)")] = 256,
    latent_dim: Annotated[int, typer.Option(help="fargan: dimension the RVQ quantises (a new run only)")] = 64,
    skip: Annotated[bool, typer.Option(help="fargan: linear paths around the conv stacks (a new run only)")] = False,
    ae_warmup: Annotated[int, typer.Option(help="fargan: steps on the unquantised latent before the RVQ joins")] = 0,
    dropout: Annotated[str, typer.Option(help="fargan: how quantiser dropout draws K: square (favours few layers) "
                                              "or mid (favours K 6-12)")] = "square",
    until: Annotated[int | None, typer.Option(help="fargan: stop at this step, keeping the --steps schedule "
                                                   "(training in phases)")] = None,
) -> None:
    """Train the RVQ speech codec: the fargan feature quantiser, or the waveform codec (GPU when present)."""
    bb = backbone_class(backbone)
    ck = bb.train_codec(data, out or bb.checkpoint_dir("codec"), threads, steps=steps, batch=batch, seconds=seconds,
                        lr=lr, seed=seed, adv_start=adv_start, eval_every=eval_every, ckpt_every=ckpt_every,
                        init_weights=init_weights, max_hours=max_hours, hidden=hidden, latent_dim=latent_dim,
                        skip=skip, ae_warmup=ae_warmup, dropout=dropout, until=until)
    console.print(f"checkpoint: {ck}")


@app.command("export-codec")
@friendly_errors
def export_codec_cmd(
    ckpt: Annotated[Path, typer.Option(help="training checkpoint")] = Path("checkpoints/codec/ckpt.pt"),
    out: Annotated[Path | None, typer.Option(help="safetensors path (default: the shipped weights)")] = None,
) -> None:
    """Export weights only (safetensors: float16 for the waveform backbone, float32 for fargan) for shipping."""
    import torch

    if ckpt == Path("checkpoints/codec/ckpt.pt") and not ckpt.exists() and Path("checkpoints/codec_fargan/ckpt.pt").exists():
        ckpt = Path("checkpoints/codec_fargan/ckpt.pt")
    cfg = torch.load(ckpt, map_location="cpu", weights_only=False)["model_cfg"]
    p = backbone_class(cfg.get("backbone", "waveform")).export_codec(ckpt, out)
    console.print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")


@app.command("codec-card")
@friendly_errors
def codec_card_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    ckpt_dir: Annotated[Path | None, typer.Option(
        help="the training run (for its eval history; default: the backbone's)")] = None,
    clips: Annotated[int, typer.Option(help="held-out clips to score")] = 24,
    backbone: Annotated[str, typer.Option(help="fargan (writes MODEL_CARD_fargan.md) or waveform")] = DEFAULT_BACKBONE,
) -> None:
    """Measure the shipped weights on held-out real speech (and Opus alongside) and write the model card."""
    from lossbench.codecs.neural.card import write_codec_card

    bb = backbone_class(backbone)
    console.print(f"wrote {write_codec_card(backbone, data, ckpt_dir or bb.checkpoint_dir('codec'), clips)}")


@app.command("soundspring")
@friendly_errors
def train_soundspring_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    out: Annotated[Path | None, typer.Option(help="checkpoint directory (resumes from it; default: the backbone's)")] = None,
    steps: Annotated[int, typer.Option()] = 100_000,
    batch: Annotated[int, typer.Option()] = 16,
    frames: Annotated[int, typer.Option(help="frames per training window (20 ms each)")] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    lr: Annotated[float, typer.Option()] = 3e-4,
    max_hours: Annotated[float | None, typer.Option(help="tokenize at most this much training audio (a seeded subset)")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    dim: Annotated[int, typer.Option(help="Transformer width (a new run only; a resumed run keeps its own)")] = 128,
    depth: Annotated[int, typer.Option(help="Transformer blocks (a new run only)")] = 3,
    heads: Annotated[int, typer.Option(help="attention heads (a new run only)")] = 4,
    ff: Annotated[int, typer.Option(help="feed-forward width (a new run only)")] = 512,
    backbone: Annotated[str, typer.Option(help="whose tokens: waveform or fargan")] = DEFAULT_BACKBONE,
    conceal_fraction: Annotated[float, typer.Option(help="share of examples with concealment-time masks: a "
                                                         "contiguous gap at a 20-frame window's end, at the deployed K")] = 0.0,
    pitch_sigma: Annotated[float, typer.Option(help="> 0: ordinal soft targets on the pitch layers (a Gaussian of "
                                                    "this many periods)")] = 0.0,
    pitch_weight: Annotated[float, typer.Option(help="the soft part's share of the pitch layers' targets")] = 0.5,
    init: Annotated[Path | None, typer.Option(help="a new run starts from these exported weights (safetensors) and "
                                                   "their step, with a fresh optimiser")] = None,
) -> None:
    """Train SoundSpring's masked token LM on the shipped codec's tokens (paper's masking schedule).

    The size defaults are the shipped model's (MLMConfig's, written out so that the CLI does not import torch);
    larger models, like the paper's, are a matter of --dim/--depth/--heads/--ff.
    """
    from lossbench.codecs.soundspring.mlm import MLMConfig
    from lossbench.codecs.soundspring.train import MLMTrainConfig, train_mlm

    out = out or backbone_class(backbone).checkpoint_dir("soundspring")
    ck = train_mlm(data, out, MLMTrainConfig(steps=steps, batch=batch, frames=frames, seed=seed, lr=lr,
                                             max_hours=max_hours, backbone=backbone,
                                             conceal_fraction=conceal_fraction, pitch_sigma=pitch_sigma,
                                             pitch_weight=pitch_weight, init=str(init) if init else None),
                   MLMConfig(dim=dim, depth=depth, heads=heads, ff=ff), threads=threads)
    console.print(f"checkpoint: {ck}")


@app.command("export-soundspring")
@friendly_errors
def export_soundspring_cmd(
    ckpt: Annotated[Path, typer.Option(help="training checkpoint")] = Path("checkpoints/soundspring/ckpt.pt"),
    out: Annotated[Path | None, typer.Option(help="safetensors path (default: the shipped weights)")] = None,
) -> None:
    """Export the masked LM (float16 safetensors) for shipping (to the shipped file of its backbone)."""
    import torch

    from lossbench.codecs.soundspring.train import export_mlm
    from lossbench.codecs.soundspring.weights import mlm_path

    backbone = torch.load(ckpt, map_location="cpu", weights_only=False).get("backbone", "waveform")
    p = export_mlm(ckpt, out or mlm_path(None, backbone))
    console.print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")


@app.command("soundspring-head")
@friendly_errors
def train_soundspring_head_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    out: Annotated[Path | None, typer.Option(help="safetensors path (default: the shipped head of the backbone)")] = None,
    steps: Annotated[int, typer.Option()] = 3000,
    lr: Annotated[float, typer.Option()] = 1e-3,
    seed: Annotated[int, typer.Option()] = 0,
    max_hours: Annotated[float | None, typer.Option(help="tokenize at most this much training audio")] = 3.0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    backbone: Annotated[str, typer.Option(help="whose tokens (needs pitch tokens: fargan)")] = DEFAULT_BACKBONE,
) -> None:
    """Train the concealment head of the shipped MLM (lost coarse tokens as a change from the last known frame)."""
    from lossbench.codecs.soundspring.coarse_head import train_head

    p, ev = train_head(data, out, backbone=backbone, steps=steps, lr=lr, seed=seed, threads=threads,
                       max_hours=max_hours)
    console.print(f"wrote {p}; held-out gaps: " + ", ".join(f"{k} {v:.2f}" for k, v in ev.items()))


@app.command("soundspring-card")
@friendly_errors
def soundspring_card_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    ckpt_dir: Annotated[Path | None, typer.Option(help="the training run (for its logs; default: the backbone's)")] = None,
    clips: Annotated[int, typer.Option(help="held-out clips to score")] = 16,
    backbone: Annotated[str, typer.Option(
        help="whose tokens: waveform (MODEL_CARD.md) or fargan (MODEL_CARD_fargan.md)")] = DEFAULT_BACKBONE,
) -> None:
    """Measure the shipped masked LM's compression gain on held-out speech and write its model card."""
    from lossbench.codecs.soundspring.card import write_card

    backbone = backbone_class(backbone).name
    ckpt_dir = ckpt_dir or backbone_class(backbone).checkpoint_dir("soundspring")
    console.print(f"wrote {write_card(data, ckpt_dir, count=clips, backbone=backbone)}")


@app.command("soundspring-freq")
@friendly_errors
def soundspring_freq_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    max_hours: Annotated[float | None, typer.Option(
        help="count at most this much training audio (the MLM's seeded subset)")] = 3.0,
    backbone: Annotated[str, typer.Option(help="whose tokens")] = DEFAULT_BACKBONE,
    out: Annotated[Path | None, typer.Option(help="default: the backbone's shipped token_freq file")] = None,
) -> None:
    """Count each layer's token frequencies on the training tokens: the table of SoundSpring's entropy=freq."""
    from lossbench.codecs.neural.tokens import codec_sha, tokenize
    from lossbench.codecs.soundspring.frequencies import count_tokens, save_frequencies

    cls = backbone_class(backbone)
    toks = tokenize(data, "train", max_hours=max_hours, backbone=cls.name)
    dest = out or cls.shipped_path("token_freq")
    src = f"training split of {data}" + (f", {max_hours:g} h seeded subset" if max_hours else "")
    save_frequencies(count_tokens(toks), dest, cls.name, codec_sha(None, cls.name), src)
    console.print(f"wrote {dest} ({toks.shape[0]} frames)")


@app.command("glaris")
@friendly_errors
def train_glaris_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    out: Annotated[Path | None, typer.Option(help="checkpoint directory (resumes from it; default: the backbone's)")] = None,
    steps: Annotated[int, typer.Option()] = 30_000,
    batch: Annotated[int, typer.Option()] = 16,
    frames: Annotated[int, typer.Option(help="frames per training window (20 ms each)")] = 96,
    lr: Annotated[float, typer.Option()] = 1e-3,
    alpha: Annotated[float, typer.Option(help="weight of the concealed reconstruction (eq. 9)")] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    max_hours: Annotated[float | None, typer.Option(help="tokenize at most this much training audio")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    y_dim: Annotated[int, typer.Option(help="channels of y per frame (a new run only)")] = 48,
    gain_max: Annotated[float, typer.Option(help="quantisation gain at q = 0 (a new run only)")] = 4.0,
    gain_min: Annotated[float, typer.Option(help="quantisation gain at q = 63 (a new run only)")] = 0.25,
    backbone: Annotated[str, typer.Option(help="whose latents: waveform or fargan")] = DEFAULT_BACKBONE,
    skip: Annotated[bool, typer.Option(help="a linear path past g_a and g_s (a new run only)")] = False,
) -> None:
    """Train the Glaris transform coding (stage II) on the frozen backbone's latents."""
    from lossbench.codecs.glaris.model import GlarisConfig
    from lossbench.codecs.glaris.train import GlarisTrainConfig, train_glaris
    backbone = backbone_class(backbone).name
    out = out or backbone_class(backbone).checkpoint_dir("glaris")
    cfg = GlarisTrainConfig(steps=steps, batch=batch, frames=frames, lr=lr, alpha=alpha, seed=seed, max_hours=max_hours,
                            backbone=backbone)
    model_cfg = GlarisConfig(y_dim=y_dim, gain_max=gain_max, gain_min=gain_min, y_range=64, skip=skip)
    console.print(f"checkpoint: {train_glaris(data, out, cfg, model_cfg, threads=threads)}")


@app.command("glaris-stage3")
@friendly_errors
def train_glaris_stage3_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    out: Annotated[Path | None, typer.Option(help="safetensors path (default: the shipped stage-III decoder)")] = None,
    steps: Annotated[int, typer.Option()] = 3000,
    lr: Annotated[float, typer.Option()] = 2e-4,
    alpha: Annotated[float, typer.Option(help="weight of the concealed reconstruction (eq. 12)")] = 1.0,
    lambda_l: Annotated[float, typer.Option(help="weight of the re-encoded latent loss (eq. 13)")] = 0.05,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
) -> None:
    """Glaris stage III: fine-tune the fargan backbone's feature decoder to the shipped Glaris's reconstructions."""
    from lossbench.codecs.glaris.stage3 import train_stage3

    p, ev = train_stage3(data, out, steps=steps, lr=lr, alpha=alpha, lambda_l=lambda_l, seed=seed, threads=threads)
    b, a = ev["before"], ev["after"]
    console.print(f"wrote {p}; held-out feature error at q = 48 (lossless / 20 % loss): "
                  f"{b['rec']:.4f} / {b['con']:.4f} before, {a['rec']:.4f} / {a['con']:.4f} after "
                  f"(rvq K=12 with the backbone's decoder: {a['rvq12']:.4f})")


@app.command("export-glaris")
@friendly_errors
def export_glaris_cmd(
    ckpt: Annotated[Path, typer.Option(help="training checkpoint")] = Path("checkpoints/glaris/ckpt.pt"),
    out: Annotated[Path | None, typer.Option(help="safetensors path (default: the shipped weights)")] = None,
) -> None:
    """Export the Glaris modules (float16 safetensors) for shipping (to the shipped file of its backbone)."""
    import torch

    from lossbench.codecs.glaris.train import export_glaris
    from lossbench.codecs.glaris.weights import glaris_path

    backbone = torch.load(ckpt, map_location="cpu", weights_only=False).get("backbone", "waveform")
    p = export_glaris(ckpt, out or glaris_path(None, backbone))
    console.print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")


@app.command("glaris-card")
@friendly_errors
def glaris_card_cmd(
    data: Annotated[Path, typer.Option(help="directory made by 'lossbench data prepare-speech'")] = Path("data/speech"),
    ckpt_dir: Annotated[Path | None, typer.Option(help="the training run (for its logs; default: the backbone's)")] = None,
    clips: Annotated[int, typer.Option(help="held-out clips to score")] = 12,
    backbone: Annotated[str, typer.Option(help="waveform (MODEL_CARD.md) or fargan (MODEL_CARD_fargan.md)")] = DEFAULT_BACKBONE,
) -> None:
    """Measure the shipped Glaris modules on held-out speech (rvq alongside) and write their model card."""
    from lossbench.codecs.glaris.card import write_card
    backbone = backbone_class(backbone).name
    ckpt_dir = ckpt_dir or backbone_class(backbone).checkpoint_dir("glaris")
    console.print(f"wrote {write_card(data, ckpt_dir, count=clips, backbone=backbone)}")
