import numpy as np
import pytest
import soundfile as sf

from lossbench.audio import load_audio, save_audio
from lossbench.corpus import corpus_info, default_corpus, scan_corpus
from lossbench.errors import AudioError, ConfigError


def test_default_corpus_is_embedded_and_varied():
    refs = default_corpus()
    assert len(refs) >= 30
    info = corpus_info(None)
    assert 120 <= info["total_s"] <= 240 and info["sample_rates_hz"] == {16000: len(refs)}
    assert {r.meta["language"] for r in refs} >= {"en", "es", "fr", "it", "ru"}
    assert {r.meta["kind"] for r in refs} == {"real", "synthetic"}
    c = refs[0].load(16000)
    assert 4.0 <= c.duration_s <= 8.5 and c.sample_rate_hz == 16000 and np.abs(c.samples).max() <= 1.0


def test_loader_resamples_mixes_down_and_records_it(tmp_path):
    x = np.stack([np.sin(np.linspace(0, 100, 48000)), np.zeros(48000)], axis=1).astype(np.float32) * 0.5
    p = tmp_path / "st.wav"
    sf.write(p, x, 48000)
    c = load_audio(p, 16000)
    assert c.sample_rate_hz == 16000 and c.num_samples == 16000
    assert c.meta["original_rate_hz"] == 48000 and c.meta["resampled"] and c.meta["mixed_down_from_channels"] == 2


def test_unreadable_and_empty_files_name_the_path(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(AudioError, match="bad.wav: cannot read audio"):
        load_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav: the file holds no samples"):
        load_audio(empty)


def test_directory_and_librispeech_layouts(tmp_path):
    d = tmp_path / "mine"
    save_audio(d / "a.wav", np.zeros(800), 16000)
    save_audio(d / "sub" / "b.flac", np.zeros(800), 8000)
    refs = scan_corpus(d)
    assert [r.id for r in refs] == ["a", "sub__b"]
    ls = tmp_path / "LibriSpeech" / "dev-clean" / "84" / "121123"
    save_audio(ls / "84-121123-0000.flac", np.zeros(1600), 16000)
    (ls / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\n")
    refs = scan_corpus(tmp_path / "LibriSpeech")
    assert refs[0].meta == {"layout": "librispeech", "speaker": "84", "chapter": "121123", "text": "GO DO YOU HEAR"}
    with pytest.raises(ConfigError, match="does not exist"):
        scan_corpus(tmp_path / "nope")
    (tmp_path / "void").mkdir()
    with pytest.raises(ConfigError, match="holds no audio files"):
        scan_corpus(tmp_path / "void")
