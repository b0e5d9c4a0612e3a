"""The built-in backends, registered in one place (add a new one here with one call).

* ``transformers``: any causal LM (hub id, folder, GGUF de-quantized); trains, takes LoRA
  adapters and the int8 CPU path;
* ``llama.cpp``: GGUF weights run directly by llama-cpp-python (the faster CPU path);
* ``vllm``: vLLM on GPUs (scoring, generation, LoRA adapters per request; its own environment).
"""

from __future__ import annotations

from llmrec.llm.embed import embed_loaded
from llmrec.llm.generation import TextGenerator
from llmrec.llm.hf import check_transformers, load_transformers, load_transformers_tokenizer
from llmrec.llm.llamacpp import LlamaCppScorer, check_llamacpp, load_llamacpp, load_llamacpp_tokenizer
from llmrec.llm.registry import Backend, register_backend
from llmrec.llm.scoring import YesNoScorer
from llmrec.llm.vllm import VllmGenerator, VllmScorer, apply_vllm_adapter, check_vllm, load_vllm

TRANSFORMERS = register_backend(Backend(
    "transformers", load=load_transformers, scorer=YesNoScorer.for_loaded,
    description="transformers (any causal LM; GGUF de-quantized)", trainable=True, adapters=True, int8=True, check=check_transformers,
    generator=TextGenerator.for_loaded, tokenizer=load_transformers_tokenizer, embedder=embed_loaded))
LLAMACPP = register_backend(Backend(
    "llama.cpp", load=load_llamacpp, scorer=LlamaCppScorer.for_loaded,
    description="llama.cpp (GGUF weights run directly; pip install 'llmrec[llamacpp]')",
    check=check_llamacpp, tokenizer=load_llamacpp_tokenizer))
VLLM = register_backend(Backend(
    "vllm", load=load_vllm, scorer=VllmScorer.for_loaded,
    description="vLLM on GPUs (its own environment: pip install -e '.[vllm]'; docs/distributed.md)",
    adapters=True, check=check_vllm, generator=VllmGenerator.for_loaded, apply_adapter=apply_vllm_adapter))
