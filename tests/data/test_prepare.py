import pytest

from lossbench.data import prepare
from lossbench.errors import ConfigError


def test_missing_sources_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "TUXPAINT", tmp_path / "no-tuxpaint")
    monkeypatch.setattr(prepare, "FORTUNES", tmp_path / "no-fortunes")
    missing = prepare.check_sources()
    assert "tuxpaint-stamps-default" in missing and "fortunes" in missing
    with pytest.raises(ConfigError, match="prepare-speech needs: .*tuxpaint-stamps-default.*make data-deps"):
        prepare.prepare_speech(tmp_path / "out")


def test_fortune_texts_are_clean_sentences(tmp_path, monkeypatch):
    import random

    (tmp_path / "f").write_text("A short but usable fortune text here.\n%\nx\n%\n\x01 bad \x02 chars in this one ok\n")
    monkeypatch.setattr(prepare, "FORTUNES", tmp_path)
    it = prepare.fortune_sentences(random.Random(0))
    assert {next(it) for _ in range(10)} == {"A short but usable fortune text here."}
