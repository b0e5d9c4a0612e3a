"""``llmrec bench scoring``: the scoring engine against the research code's way, on one set of prompts.

Measured in one run, on the same prompts (ReLLa-style ML-1M prompts by default):

* ``research_full_logits``: batch 1, a plain forward that computes the full-vocabulary logits
  at every position (what the original research code does);
* ``generate_1_token``: batch 1, ``generate(max_new_tokens=1)`` with scores;
* ``batch1_logits_to_keep``: batch 1, forward with ``logits_to_keep=1``;
* ``engine_b{B}``: this library's :class:`~llmrec.llm.YesNoScorer` at batch size B, each
  prompt encoded whole (``prefix_reuse: off``: the FLOP rate below counts every token);
* ``engine_b{B}_common_prefix``: the same at the largest B with ``prefix_reuse: auto``, which
  encodes the prefix all prompts share once (a template's instruction header: TALLRec's prompts,
  ``--data prepared/ml-100k-tallrec``; ReLLa's open with the user profile and share ~5 tokens,
  under the 16-token threshold, so there it equals ``engine_b{B}``);
* ``rank_no_reuse`` / ``rank_prefix_reuse``: 1 positive + 20 negatives per user, scoring all
  21 full prompts vs encoding the shared user context once;
* optionally ``engine_int8`` (int8 dynamically quantized decoder weights) and
  ``engine_llamacpp`` (the GGUF weights run by llama.cpp), each with its AUC next to the
  float32 engine's on the same labelled prompts.

Also the machine's float32 matmul rate and the engine's achieved FLOP rate (2 x
non-embedding parameters per token) as a fraction of it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from llmrec.bench.machine import machine_info, peak_rss_mib


def matmul_gflops(n: int = 2048, repeats: int = 6) -> float:
    """Best float32 GFLOP/s of an n x n matmul on this machine (torch, all threads)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _timed(fn, prompts) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    scores = fn(prompts)
    return np.asarray(scores, dtype=np.float64), time.perf_counter() - t


def run(
    data: str = "prepared/ml-1m-rella",
    model_name: str = "default",
    n_prompts: int = 24,
    history_k: int = 12,
    batch_sizes: tuple[int, ...] = (1, 8),
    rank_users: int = 2,
    int8: bool = False,
    auc_prompts: int = 200,
    llamacpp: bool = False,
    seed: int = 0,
    log=print,
) -> dict[str, Any]:
    import torch

    from llmrec.data.prepared import PreparedData
    from llmrec.data.sampling import subset_rows
    from llmrec.llm import AnswerTokens, EncodedPrompt, ModelConfig, ScoringConfig, YesNoScorer, load_model
    from llmrec.llm.scoring import count_non_embedding_parameters
    from llmrec.metrics import auc
    from llmrec.prompts import load_template
    from llmrec.prompts.build import PromptData, default_template, render_ctr

    check_inputs(data)
    prepared = PreparedData.load(data)
    table = prepared.split("test")
    t0 = time.perf_counter()
    loaded = load_model(ModelConfig(name=model_name))
    load_s = time.perf_counter() - t0
    model, tok = loaded.model, loaded.tokenizer
    template = load_template(default_template(prepared.protocol, prepared.dataset))
    texts = PromptData.from_tables(prepared.items, prepared.users, prepared.dataset, prepared.config.get("label_threshold"))
    n_rows = max(n_prompts, auc_prompts if (int8 or llamacpp) else 0, rank_users)
    rows = table.take(subset_rows(table.num_rows, n_rows, seed)).to_pylist()
    rendered = render_ctr(rows, texts, template, tok, history_k, 1024, chat=False)
    prompts = [EncodedPrompt(p.context_ids, p.candidate_ids) for p in rendered]
    answer = AnswerTokens.for_prompt_end(tok, rendered[0].text, template.answer["yes"], template.answer["no"])
    pair = [answer.yes_id, answer.no_id]
    bench_prompts = prompts[:n_prompts]
    n_tokens = sum(len(p) for p in bench_prompts)
    log(f"{len(bench_prompts)} prompts, mean {n_tokens / len(bench_prompts):.0f} tokens; model loaded in {load_s:.1f} s")

    def two_way(logits) -> float:
        return torch.softmax(logits[pair].double(), 0)[0].item()

    def research(ps):
        with torch.inference_mode():
            return [two_way(model(input_ids=torch.tensor([p.ids])).logits[0, -1]) for p in ps]

    def generate(ps):
        out = []
        with torch.inference_mode():
            for p in ps:
                ids = torch.tensor([p.ids])
                g = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=False,
                                   output_scores=True, return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
                out.append(two_way(g.scores[0][0]))
        return out

    def keep1(ps):
        with torch.inference_mode():
            return [two_way(model(input_ids=torch.tensor([p.ids]), logits_to_keep=1).logits[0, -1]) for p in ps]

    results: dict[str, Any] = {}
    reference = None
    methods = [("research_full_logits", research), ("generate_1_token", generate), ("batch1_logits_to_keep", keep1)]
    for b in batch_sizes:
        scorer = YesNoScorer(model, answer, ScoringConfig(batch_size=b, prefix_reuse="off"), pad_token_id=tok.pad_token_id)
        methods.append((f"engine_b{b}", scorer.score))
    b = max(batch_sizes)
    scorer = YesNoScorer(model, answer, ScoringConfig(batch_size=b), pad_token_id=tok.pad_token_id)
    methods.append((f"engine_b{b}_common_prefix", scorer.score))
    for name, fn in methods:
        fn(bench_prompts[:1])  # warm-up
        scores, secs = _timed(fn, bench_prompts)
        if reference is None:
            reference = scores
        results[name] = {"seconds": round(secs, 2), "prompts_per_s": round(len(bench_prompts) / secs, 3),
                         "tokens_per_s": round(n_tokens / secs, 1),
                         "max_abs_diff_vs_research": float(np.abs(scores - reference).max())}
        log(f"{name:24s} {results[name]['prompts_per_s']:7.3f} prompts/s")

    # 1:20 ranking: each user's context with the target and 20 other items as candidates
    rng = np.random.default_rng(seed)
    all_items = list(texts.items)
    rank_prompts = []
    for row in rows[:rank_users]:
        hist = texts.history(row["history_items"], row["history_ratings"], history_k)
        cands = [row["item"], *rng.choice(all_items, size=20, replace=False).tolist()]
        for c in cands:
            p = template.render(tok, texts.variables(row["user"], c), hist, 1024)
            rank_prompts.append(EncodedPrompt(p.context_ids, p.candidate_ids))
    rank = {}
    for mode in ("off", "auto"):
        scorer = YesNoScorer(model, answer, ScoringConfig(batch_size=8, prefix_reuse=mode), pad_token_id=tok.pad_token_id)
        scores, secs = _timed(scorer.score, rank_prompts)
        rank[mode] = scores
        key = "rank_no_reuse" if mode == "off" else "rank_prefix_reuse"
        results[key] = {"seconds": round(secs, 2), "prompts_per_s": round(len(rank_prompts) / secs, 3)}
        log(f"{key:24s} {results[key]['prompts_per_s']:7.3f} prompts/s")
    results["rank_prefix_reuse"]["max_abs_diff_vs_no_reuse"] = float(np.abs(rank["off"] - rank["auto"]).max())

    peak = matmul_gflops()
    params = count_non_embedding_parameters(model)
    best_engine = max((k for k in results if k.startswith("engine_b") and not k.endswith("_common_prefix")),
                      key=lambda k: results[k]["tokens_per_s"])
    shared = len(os.path.commonprefix([p.ids for p in bench_prompts]))
    achieved = 2 * params * results[best_engine]["tokens_per_s"] / 1e9

    summary = {
        "matmul_gflops_fp32": round(peak, 1),
        "non_embedding_params": params,
        "best_engine": best_engine,
        "engine_gflops": round(achieved, 1),
        "engine_fraction_of_matmul_peak": round(achieved / peak, 3),
        "speedup_engine_vs_research": round(results[best_engine]["prompts_per_s"] / results["research_full_logits"]["prompts_per_s"], 2),
        "speedup_engine_vs_generate": round(results[best_engine]["prompts_per_s"] / results["generate_1_token"]["prompts_per_s"], 2),
        "speedup_prefix_reuse": round(results["rank_prefix_reuse"]["prompts_per_s"] / results["rank_no_reuse"]["prompts_per_s"], 2),
        "common_prefix_tokens": shared,
        "speedup_common_prefix": round(results[f"engine_b{b}_common_prefix"]["prompts_per_s"]
                                       / results[f"engine_b{b}"]["prompts_per_s"], 2),
    }
    alternatives = {}
    if int8:
        from llmrec.llm.quantize import quantize_int8

        alternatives["int8"] = lambda: YesNoScorer(quantize_int8(model, tok), answer, ScoringConfig(batch_size=8),
                                                   pad_token_id=tok.pad_token_id)
    if llamacpp:
        from llmrec.llm.llamacpp import LlamaCppScorer, open_gguf

        alternatives["llamacpp"] = lambda: LlamaCppScorer(open_gguf(str(_gguf_of(model_name)), n_ctx=2048), answer)
    if alternatives:
        labels = np.asarray([r["label"] for r in rows[:auc_prompts]])
        auc_set = prompts[:auc_prompts]
        fp32_scores = YesNoScorer(model, answer, ScoringConfig(batch_size=8), pad_token_id=tok.pad_token_id).score(auc_set)
        summary["auc_prompts"] = len(auc_set)
        summary["auc_fp32"] = round(auc(labels, fp32_scores), 4)
        for name, make in alternatives.items():
            scorer = make()
            scorer.score(bench_prompts[:1])
            scores, secs = _timed(scorer.score, bench_prompts)
            results[f"engine_{name}"] = {"seconds": round(secs, 2), "prompts_per_s": round(len(bench_prompts) / secs, 3),
                                         "tokens_per_s": round(n_tokens / secs, 1),
                                         "max_abs_diff_vs_research": float(np.abs(scores - reference).max())}
            alt = scorer.score(auc_set)
            summary[f"auc_{name}"] = round(auc(labels, alt), 4)
            summary[f"auc_delta_{name}"] = round(summary[f"auc_{name}"] - summary["auc_fp32"], 4)
            summary[f"{name}_mean_abs_score_diff"] = round(float(np.abs(alt - fp32_scores).mean()), 4)
            summary[f"speedup_{name}_vs_best_fp32_engine"] = round(
                results[f"engine_{name}"]["prompts_per_s"] / results[best_engine]["prompts_per_s"], 2)
            log(f"{name}: {results[f'engine_{name}']['prompts_per_s']:.3f} prompts/s, "
                f"AUC {summary[f'auc_{name}']} vs fp32 {summary['auc_fp32']}")
    return {"machine": machine_info(), "device": str(loaded.device), "model": loaded.source,
            "prompts": len(bench_prompts), "mean_prompt_tokens": round(n_tokens / len(bench_prompts), 1),
            "history_k": history_k, "results": results, "summary": summary, "peak_rss_mib": round(peak_rss_mib(), 1)}


def _gguf_of(model_name: str):
    from llmrec.errors import ConfigError
    from llmrec.llm.gguf import locate_gguf

    path = locate_gguf(model_name, None)
    if path is None:
        raise ConfigError(f"--llamacpp needs a GGUF model; {model_name!r} is not one")
    return path


def check_inputs(data: str, split: str = "test") -> None:
    """The benchmark's prepared folder exists, has the split, and holds CTR samples."""
    from llmrec.data.kinds import KINDS, detect
    from llmrec.data.prepared import PreparedData
    from llmrec.errors import ConfigError

    prepared = PreparedData.load(data)
    table = prepared.split(split)
    if detect(table.schema) is not KINDS["ctr"]:
        raise ConfigError(f"{data}: bench scoring needs CTR samples (tallrec or rella protocol), not {prepared.protocol}")
