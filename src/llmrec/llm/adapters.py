"""LoRA adapters at scoring time: find, check and apply a trained adapter (peft).

Loading a model with an adapter is part of loading a model, so evaluation never needs the
trainer. :func:`check_adapter` is cheap (it reads the JSON config and the safetensors header)
and runs before any run folder is created.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from llmrec.errors import ModelError
from llmrec.llm.types import LoadedModel

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def adapter_dir(path: str | Path) -> Path:
    """The folder holding ``adapter_config.json``: the path itself, or ``<run>/adapter``."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: adapter not found (no such folder)")
    for candidate in (path, path / "adapter"):
        if (candidate / "adapter_config.json").exists():
            return candidate
    raise ModelError(f"{path}: no LoRA adapter here (adapter_config.json missing); pass a train run folder or its "
                     "adapter/ folder")


def check_safetensors(file: Path) -> None:
    """ModelError when ``file`` is not a complete safetensors file (header and data sizes agree)."""
    try:
        with open(file, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ModelError(f"{file}: truncated safetensors file (no header)")
            (n,) = struct.unpack("<Q", raw)
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"{file}: not a readable safetensors file ({exc})") from None
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    size = file.stat().st_size
    if size < 8 + n + end:
        raise ModelError(f"{file}: truncated safetensors file ({size:,} bytes, the header promises {8 + n + end:,}); "
                         "train the adapter again")


def check_adapter(path: str | Path) -> Path:
    """The adapter folder, after checking its config and weights; a one-line ModelError otherwise."""
    folder = adapter_dir(path)
    try:
        json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder / 'adapter_config.json'}: not valid JSON ({exc})") from None
    weights = [folder / w for w in WEIGHT_FILES if (folder / w).exists()]
    if not weights:
        raise ModelError(f"{folder}: no adapter weights ({' or '.join(WEIGHT_FILES)})")
    if weights[0].suffix == ".safetensors":
        check_safetensors(weights[0])
    return folder


def apply_adapter(loaded: LoadedModel, path: str | Path, merge: bool = False) -> LoadedModel:
    """``loaded`` with the adapter at ``path`` applied (kept separate, or merged into the weights)."""
    from peft import PeftModel

    from llmrec.llm.collab import CollabTables, install_collab, read_collab

    folder = check_adapter(path)
    collab = None
    meta = read_collab(folder)
    if meta is not None:  # the mapper's module must exist before peft loads its weights into it
        tables, meta = CollabTables.load(folder)
        collab = install_collab(loaded.model, tables, int(meta["mapper"]["hidden"]))
        if collab.base != int(meta["vocab_base"]):
            raise ModelError(f"{folder}: its collaborative tokens were trained on a model with {meta['vocab_base']:,} "
                             f"token ids; {loaded.source} has {collab.base:,}")
    try:
        model = PeftModel.from_pretrained(loaded.model, str(folder)).to(loaded.device)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{folder}: cannot apply this adapter to {loaded.source}: {first}") from None
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return LoadedModel(model=model, tokenizer=loaded.tokenizer, device=loaded.device, dtype=loaded.dtype,
                       source=f"{loaded.source} + adapter {folder}{' (merged)' if merge else ''}", backend=loaded.backend,
                       collab=collab)
