"""The model is assembled from the two wheels once, checked by sha256, and rebuilt if damaged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from confer.ai.model import MODEL_SHA256, ModelUnavailable, ensure_model, sha256_of, source_files


def test_the_wheels_hold_every_file_faster_whisper_needs() -> None:
    files = source_files()
    assert set(files) == {
        "model.bin.part1",
        "model.bin.part2",
        "config.json",
        "tokenizer.json",
        "vocabulary.json",
    }
    assert "alignment_heads" in json.loads(files["config.json"].read_text())


def test_assembled_model_matches_the_published_checksum(model_dir: Path) -> None:
    assert sha256_of(model_dir / "model.bin") == MODEL_SHA256
    # The tokenizer beside the weights is what keeps faster-whisper off the network.
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (model_dir / name).is_file()
    assert not list(model_dir.glob(".*.tmp"))


def test_a_damaged_model_is_rebuilt_from_the_wheels(tmp_path: Path) -> None:
    target = ensure_model(tmp_path / "m")
    with (target / "model.bin").open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 64)
    assert sha256_of(target / "model.bin") != MODEL_SHA256
    ensure_model(target)
    assert sha256_of(target / "model.bin") == MODEL_SHA256


def test_a_truncated_model_is_rebuilt(tmp_path: Path) -> None:
    target = ensure_model(tmp_path / "m")
    with (target / "model.bin").open("r+b") as f:
        f.truncate(1024)
    ensure_model(target)
    assert sha256_of(target / "model.bin") == MODEL_SHA256


def test_a_checksum_the_wheels_cannot_meet_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="sha256"):
        ensure_model(tmp_path / "m", "f" * 64)
    assert not (tmp_path / "m" / "model.bin").exists()
    assert not list((tmp_path / "m").glob(".*.tmp"))
