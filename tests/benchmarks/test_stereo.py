"""Stereo where a codec and a metric both take it (#23): `stereo = true` keeps two-channel clips as they are for
Opus with channels=2, gives every other codec their mean, and scores the mean of both sides (as ViSQOL does)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep
from lossbench.core import Clip
from lossbench.corpus import default_corpus


@pytest.fixture(scope="module")
def stereo_corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("stereo")
    refs = default_corpus("fullband")
    left, right = (refs[i].load().samples[: 3 * 48000] for i in (0, 1))
    sf.write(d / "pair.flac", np.stack([left, right], axis=1), 48000, subtype="PCM_16")
    sf.write(d / "solo.flac", refs[2].load().samples[: 3 * 48000], 48000, subtype="PCM_16")
    return d


def test_a_stereo_sweep_keeps_two_channels_for_a_stereo_codec(tmp_path, stereo_corpus):
    s = spec_from_dict({
        "name": "st", "corpus": str(stereo_corpus), "stereo": True, "metrics": ["si_snr", "snr"], "examples": 2,
        "concealments": ["opus-plc", "repeat"],
        "codec": [{"spec": "opus:bitrate=96000,sample_rate_hz=48000,application=audio,channels=2"},
                  {"spec": "opus:bitrate=96000,sample_rate_hz=48000,application=audio"}],
        "channel": [{"model": "bernoulli", "loss": [0.0, 0.1]},
                    {"model": "bernoulli", "loss": [0.05], "jitter": "normal:10ms", "playout": "tsm"}]})
    run_sweep(s, tmp_path / "r", progress=False)
    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    st = df[df["codec_channels"] == 2]
    mono = df[df["codec_channels"] == 1]
    # the stereo codec takes no waveform concealment: 'repeat' is skipped for it, run for the mono one
    assert set(st["concealment"]) == {"opus-plc"} and set(mono["concealment"]) == {"opus-plc", "repeat"}
    ok = st[st["status"] == "ok"]
    pair = ok[ok["clip"] == "pair"]
    assert (pair["clip_channels"] == 2).all() and pair["metrics_downmixed"].all()
    assert (mono[mono["clip"] == "pair"]["clip_channels"] == 2).all()  # the mono codec coded the pair's mean
    # the saved example of the stereo codec is a stereo file
    for f in pair["audio_file"].dropna():
        assert sf.info(tmp_path / "r" / f).channels == 2
    # the time-warping buffer renders one channel: a clear error row for the stereo codec, not a crash
    bad = st[st["playout"] == "tsm"]
    assert (bad["status"] == "error").all() and bad["error"].str.contains("time-scales one channel").all()
    assert (mono[mono["playout"] == "tsm"]["status"] == "ok").all()
    # clean stereo coding at 96 kbit/s is close to transparent on the mean of the channels; loss costs
    clean = pair[pair["loss_param"] == 0.0]["snr"].iloc[0]
    lossy = pair[pair["loss_param"] == 0.1]["snr"].iloc[0]
    assert clean > 10 and lossy < clean


def test_a_stereo_clip_refuses_a_channel_count_it_cannot_hold():
    from lossbench.errors import AudioError

    with pytest.raises(AudioError, match=r"1-D \(mono\) or n x 2 \(stereo\)"):
        Clip("x", np.zeros((100, 3), np.float32), 48000)
    c = Clip("x", np.ones((100, 2), np.float32) * [0.2, 0.6], 48000)
    assert c.channels == 2 and np.allclose(c.mono().samples, 0.4)
