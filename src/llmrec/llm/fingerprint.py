"""A cheap identity of a model's weights, for caches keyed by content (no model is loaded).

* a GGUF file (``default`` included): its resolved path, size and modification time;
* a local folder: ``config.json``'s content plus the name, size and modification time of every
  weight file (``*.safetensors``, ``*.bin``, ``*.pt``, ``*.gguf``) — re-saving other weights
  in the same folder changes it;
* a hub id: the id and revision.

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

from llmrec.llm.gguf import locate_gguf
from llmrec.llm.settings import ModelConfig

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def _stat(path: Path) -> list:
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns]


def model_fingerprint(config: ModelConfig) -> str:
    """A 16-hex-digit hash that changes when the weights ``config`` names change."""
    parts: dict = {"backend": config.backend, "dtype": config.dtype, "quantize": config.quantize}
    gguf = locate_gguf(config.name, config.gguf_file)
    path = Path(config.name).expanduser()
    if gguf is not None:
        parts["gguf"] = [str(gguf.resolve()), *_stat(gguf)]
    elif path.is_dir():
        parts["folder"] = str(path.resolve())
        cfg = path / "config.json"
        parts["config"] = cfg.read_text() if cfg.exists() else None
        parts["weights"] = [_stat(p) for p in sorted(path.iterdir()) if p.suffix in WEIGHT_SUFFIXES]
    else:
        parts["hub"] = [config.name, config.revision]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
