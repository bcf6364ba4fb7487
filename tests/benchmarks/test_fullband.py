"""Full band end to end: the embedded 48 kHz corpus, a 48 kHz sweep from the CLI whose report shows ViSQOL
audio, codecs at a lower rate scored against the 48 kHz reference (their band limit counts), the metrics'
resampling recorded or refused, clip selection by manifest facts, and transcript files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lossbench.benchmarks.plan import plan_sweep
from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep
from lossbench.corpus import FULLBAND_CORPUS_DIR, default_corpus, scan_corpus, with_transcripts
from lossbench.errors import ConfigError


def test_the_fullband_corpus_is_embedded_48k_with_six_genres_and_four_speech_clips():
    refs = scan_corpus("fullband")
    music = [r for r in refs if r.meta["kind"] == "music"]
    speech = [r for r in refs if r.meta["kind"] == "speech"]
    assert len(music) >= 6 and len({r.meta["genre"] for r in music}) == len(music)
    assert len(speech) >= 4 and all(r.meta["language"] == "en" and r.meta["text"] for r in speech)
    sources = (FULLBAND_CORPUS_DIR / "SOURCES.md").read_text()
    for r in refs:
        c = r.load()
        assert c.sample_rate_hz == 48000 and 8.5 <= c.duration_s <= 10.5, r.id
        assert r.meta["license"] and r.id.split("_0")[0] in sources
        spec = np.abs(np.fft.rfft(c.samples)) ** 2
        f = np.fft.rfftfreq(c.samples.size, 1 / 48000)
        assert spec[f > 8000].sum() / spec.sum() > 1e-4, f"{r.id} has no energy above 8 kHz: not full band"


def _fb_spec(**over):
    d = {"name": "fb", "corpus": "fullband", "clip_where": {"genre": "ragtime piano"}, "examples": 1,
         "metrics": ["visqol_audio", "pesq_wb", "si_snr"],
         "codec": [{"spec": "pcm:sample_rate_hz=48000", "concealments": ["zeros"]},
                   {"spec": "pcm:sample_rate_hz=16000", "concealments": ["zeros"]},
                   {"spec": "amrwb:kbps=12.65", "concealments": ["amrwb-bfi"]}],
         "channel": [{"model": "bernoulli", "loss": [0.0]}]}
    return spec_from_dict({**d, **over})


def test_a_48k_sweep_from_the_cli_scores_lower_rate_codecs_against_the_48k_reference(tmp_path):
    from typer.testing import CliRunner

    from lossbench.cli import app

    spec_file = tmp_path / "fb.toml"
    spec_file.write_text('name = "fb"\ncorpus = "fullband"\nclip_where = {genre = "ragtime piano"}\nexamples = 1\n'
                         'metrics = ["visqol_audio", "pesq_wb", "si_snr"]\n'
                         '[[codec]]\nspec = "pcm:sample_rate_hz=48000"\nconcealments = ["zeros"]\n'
                         '[[codec]]\nspec = "pcm:sample_rate_hz=16000"\nconcealments = ["zeros"]\n'
                         '[[codec]]\nspec = "amrwb:kbps=12.65"\nconcealments = ["amrwb-bfi"]\n'
                         '[[channel]]\nmodel = "bernoulli"\nloss = [0.0]\n')
    r = CliRunner().invoke(app, ["sweep", str(spec_file), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(tmp_path / "run" / "results.parquet").set_index("codec_config")
    assert (df["status"] == "ok").all() and (df["score_rate_hz"] == 48000).all()
    full, band16, amr = (df.loc[k] for k in ("pcm:sample_rate_hz=48000,frame_ms=20.0",
                                             "pcm:sample_rate_hz=16000,frame_ms=20.0", "amrwb:mode=2"))
    assert full["codec_rate_hz"] == 48000 and band16["codec_rate_hz"] == 16000 and bool(band16["clip_resampled"])
    # PCM at 48 kHz is the reference itself; at 16 kHz it loses everything above 8 kHz, and ViSQOL audio sees it
    assert full["visqol_audio"] > 4.6 and full["si_snr"] > 60
    assert band16["visqol_audio"] < full["visqol_audio"] - 0.3
    assert amr["visqol_audio"] < band16["visqol_audio"]
    # PESQ scores a 16 kHz copy, which is why the 16 kHz PCM and the 48 kHz one look alike to it; the row says so
    assert full["metrics_resampled"] == "pesq_wb@16000" and band16["pesq_wb"] > 4.5
    html = (tmp_path / "run" / "report.html").read_text()
    assert "ViSQOL audio" in html
    refs = list((tmp_path / "run" / "audio").glob("ref__*_48000.wav"))
    assert refs, "the reference example is kept at the clip's own rate"


def test_metric_resampling_off_makes_a_rate_mismatch_an_error_row(tmp_path):
    res = run_sweep(_fb_spec(metric_resampling=False, codec=[{"spec": "pcm:sample_rate_hz=48000",
                                                              "concealments": ["zeros"]}]),
                    tmp_path / "r", progress=False)
    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert len(df) == res.tasks and (df["status"] == "error").all()
    assert df["error"].str.contains("pesq_wb \\(takes 16000 Hz\\)").all()
    assert df["error"].str.contains("metric_resampling = false").all()
    assert "visqol_audio" not in df["error"].iloc[0]  # it takes 48 kHz


def test_clip_where_selects_by_manifest_facts_and_names_them_when_nothing_matches(tmp_path):
    plan = plan_sweep(_fb_spec(clip_where={"kind": "music"}), tmp_path)
    assert len(plan.clips) == 6 and all(c.meta["kind"] == "music" for c in plan.clips)
    with pytest.raises(ConfigError, match="keeps none of the 10 clips.*genre"):
        plan_sweep(_fb_spec(clip_where={"genre": "polka"}), tmp_path)
    with pytest.raises(ConfigError, match="clip_where must be a table"):
        _fb_spec(clip_where="music")


def test_a_transcript_file_sets_texts_and_names_unknown_clip_ids(tmp_path):
    refs = default_corpus()
    f = tmp_path / "t.tsv"
    f.write_text("# id\ttext\nen_00\tHello there.\nsynth_flite_slt The birch canoe.\n")
    out = {r.id: r for r in with_transcripts(refs, f)}
    assert out["en_00"].meta["text"] == "Hello there." and out["synth_flite_slt"].meta["text"] == "The birch canoe."
    assert out["en_01"].meta["text"] == {r.id: r for r in refs}["en_01"].meta["text"]
    f.write_text("en_00\tHello.\nen_99\tNo such clip.\nnope\tNor this.\n")
    with pytest.raises(ConfigError, match=r"names 2 clip id\(s\) the corpus does not hold: 'en_99', 'nope'"):
        with_transcripts(refs, f)
    f.write_text("en_00\n")
    with pytest.raises(ConfigError, match="t.tsv:1: expected"):
        with_transcripts(refs, f)
    with pytest.raises(ConfigError, match="cannot be read"):
        plan_sweep(_fb_spec(transcripts=str(tmp_path / "missing.tsv")), tmp_path)


def test_the_corpus_manifests_carry_the_asterisk_prompt_texts():
    man = json.loads((default_corpus()[0].path.parent / "manifest.json").read_text())
    en = [e for e in man["clips"] if e["language"] == "en" and e["kind"] == "real"]
    assert en and all(e.get("text") and "core-sounds-en" in e["text_source"] for e in en)


def test_a_narrowband_codec_is_scored_against_the_16k_reference_with_pesq_nb_beside(tmp_path):
    s = spec_from_dict({"name": "nb", "clips": 1, "metrics": ["pesq_wb", "stoi"],
                        "codec": [{"spec": "g711:law=ulaw", "concealments": ["g711-plc"]},
                                  {"spec": "pcm", "concealments": ["zeros"]}],
                        "channel": [{"model": "bernoulli", "loss": [0.0]}]})
    run_sweep(s, tmp_path / "r", progress=False)
    df = pd.read_parquet(tmp_path / "r" / "results.parquet").set_index("codec")
    nb, wb = df.loc["g711"], df.loc["pcm"]
    assert nb["codec_rate_hz"] == 8000 and nb["score_rate_hz"] == 16000 and bool(nb["clip_resampled"])
    assert nb["pesq_nb"] > 3.5 and nb["pesq_wb"] < wb["pesq_wb"] - 0.5  # the band limit counts in PESQ-WB
    assert np.isnan(wb.get("pesq_nb", np.nan))
