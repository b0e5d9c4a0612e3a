"""``llmrec bench summarize``: generation speed of the summarizer's prompts, batched vs batch-1, KV cache on vs off.

The prompts are real level-1 summary prompts: the first block of the first ``n_prompts`` users of a
prepared folder, rendered with the model's default summary template. Each path generates greedily
with the same settings; the figures are generated tokens/s and summaries/s, and whether the batched
texts equal the batch-1 texts (greedy decoding must not depend on the batch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from llmrec.bench.machine import machine_info


def block_prompts(data: str, tokenizer, n_prompts: int, block_size: int = 5, item_tokens: int = 48
                  ) -> tuple[list[list[int]], str, int]:
    """Token ids of the first block prompt of the first ``n_prompts`` samples of the test split."""
    from llmrec.data.prepared import PreparedData
    from llmrec.prompts.build import domain_of
    from llmrec.summarize.config import SummarizeConfig
    from llmrec.summarize.plan import blocks
    from llmrec.summarize.transform import ItemTexts, choose_template, prompt_encoder

    prepared = PreparedData.load(data)
    template, chat = choose_template(SummarizeConfig(data=data, out="-"), tokenizer)
    item_text = ItemTexts(prepared.items, template, tokenizer, item_tokens)
    encode = prompt_encoder(tokenizer, chat)
    split = prepared.splits.get("test") or next(iter(prepared.splits.values()))
    histories = split["history_items"].to_pylist()[:n_prompts]
    _, plural = domain_of(prepared.dataset)
    prompts = [encode(template.prompt("block", items=[item_text(i) for i in blocks(h, block_size)[0]],
                                      domain_plural=plural)) for h in histories if h]
    return prompts, template.name, block_size


def _time(generator, prompts) -> dict[str, Any]:
    before = generator.generated_tokens
    t0 = time.perf_counter()
    texts = generator.generate(prompts)
    seconds = time.perf_counter() - t0
    tokens = generator.generated_tokens - before
    return {"prompts": len(prompts), "batch_size": generator.config.batch_size, "use_cache": generator.config.use_cache,
            "generated_tokens": int(tokens), "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 2),
            "summaries_per_s": round(len(prompts) / seconds, 3), "texts": texts}


def run(data: str, model_name: str, n_prompts: int, batch_size: int, max_new_tokens: int, no_cache_prompts: int,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Batch-1 vs batched (KV cache on), and batched with the KV cache off, on the same prompts."""
    from llmrec.llm import ModelConfig, load_model
    from llmrec.llm.generation import GenerationConfig, TextGenerator

    loaded = load_model(ModelConfig(name=model_name))
    prompts, template, block_size = block_prompts(data, loaded.tokenizer, n_prompts)
    settings = dict(max_new_tokens=max_new_tokens, stop=[])  # no stop strings: every path makes the same tokens
    one = TextGenerator.for_loaded(loaded, GenerationConfig(batch_size=1, **settings))
    many = TextGenerator.for_loaded(loaded, GenerationConfig(batch_size=batch_size, **settings))
    off = TextGenerator.for_loaded(loaded, GenerationConfig(batch_size=batch_size, use_cache=False, **settings))
    one.generate(prompts[:1])  # warm-up
    paths = {}
    log(f"{len(prompts)} block prompts ({np.mean([len(p) for p in prompts]):.0f} tokens on average), "
        f"{max_new_tokens} new tokens each")
    paths["batch_1"] = _time(one, prompts)
    log(f"batch 1: {paths['batch_1']['tokens_per_s']} tokens/s")
    paths[f"batch_{batch_size}"] = _time(many, prompts)
    log(f"batch {batch_size}: {paths[f'batch_{batch_size}']['tokens_per_s']} tokens/s")
    few = prompts[:no_cache_prompts]
    if few:
        paths[f"batch_{batch_size}_no_kv_cache"] = _time(off, few)
        log(f"batch {batch_size}, no KV cache: {paths[f'batch_{batch_size}_no_kv_cache']['tokens_per_s']} tokens/s")
    same = paths["batch_1"]["texts"] == paths[f"batch_{batch_size}"]["texts"]
    same_off = (paths[f"batch_{batch_size}_no_kv_cache"]["texts"] == paths["batch_1"]["texts"][: len(few)]) if few else None
    base = paths["batch_1"]["tokens_per_s"]
    for p in paths.values():
        p["speedup_vs_batch_1"] = round(p["tokens_per_s"] / base, 2) if base else None
    example = paths["batch_1"]["texts"][0] if prompts else ""
    for p in paths.values():
        p.pop("texts")
    return {"machine": machine_info(), "data": data, "model": loaded.source, "template": template,
            "block_size": block_size, "mean_prompt_tokens": round(float(np.mean([len(p) for p in prompts])), 1),
            "max_new_tokens": max_new_tokens, "paths": paths, "batched_equals_batch_1": same,
            "no_kv_cache_equals_batch_1": same_off, "example_summary": example}
