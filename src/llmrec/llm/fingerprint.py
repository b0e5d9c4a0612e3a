"""The identity of a model's weights, for caches and experiment keys (no model is loaded).

* a GGUF file (``default`` included): the SHA-256 of its content;
* a local folder: ``config.json``'s content plus the name and SHA-256 of every weight file
  (``*.safetensors``, ``*.bin``, ``*.pt``, ``*.gguf``) — re-saving other weights changes it;
* a hub id: the id and revision.

By content, not by path or date: the same weights give the same fingerprint on every machine and
wherever the files lie (so an experiment folder copied to another machine keeps its keys). A file
is read once: its hash is remembered under ``$LLMREC_CACHE/hashes/`` by path, size and
modification time.

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "config.json").write_text(json.dumps({"a": 1}))
>>> _ = (d / "model.safetensors").write_bytes(b"x")
>>> a = model_fingerprint(ModelConfig(name=str(d)))
>>> _ = (d / "model.safetensors").write_bytes(b"yy")
>>> a == model_fingerprint(ModelConfig(name=str(d)))
False
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from llmrec.llm.filehash import content_sha256
from llmrec.llm.gguf import locate_gguf
from llmrec.llm.settings import ModelConfig

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def model_fingerprint(config: ModelConfig) -> str:
    """A 16-hex-digit hash that changes when the weights ``config`` names change."""
    parts: dict = {"backend": config.backend, "dtype": config.dtype, "quantize": config.quantize}
    gguf = locate_gguf(config.name, config.gguf_file)
    path = Path(config.name).expanduser()
    if gguf is not None:
        parts["gguf"] = content_sha256(gguf)
    elif path.is_dir():
        cfg = path / "config.json"
        parts["config"] = cfg.read_text() if cfg.exists() else None
        parts["weights"] = [[p.name, content_sha256(p)] for p in sorted(path.iterdir()) if p.suffix in WEIGHT_SUFFIXES]
    else:
        parts["hub"] = [config.name, config.revision]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
