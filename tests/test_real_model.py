"""Smoke tests on the real default model (Gemma 3 270M from PyPI) and real data (small samples)."""


import numpy as np
import pytest
import torch

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.evaluate import EvaluateConfig, evaluate
from llmrec.llm import AnswerTokens, EncodedPrompt, ModelConfig, ScoringConfig, YesNoScorer, load_model, load_tokenizer
from tests.conftest import require_default_model

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def gemma():
    require_default_model()
    return load_model(ModelConfig(device="cpu"))


def test_default_model_answer_tokens(gemma):
    tok = gemma.tokenizer
    tallrec = AnswerTokens.for_prompt_end(tok, "### Response:\n")
    rella = AnswerTokens.for_prompt_end(tok, "Answer:")
    assert (tallrec.yes_text, tallrec.no_text) == ("Yes", "No")
    assert (rella.yes_text, rella.no_text) == (" Yes", " No")
    assert len({tallrec.yes_id, tallrec.no_id, rella.yes_id, rella.no_id}) == 4
    light = load_tokenizer(ModelConfig(device="cpu"))  # the GGUF's tokenizer without the weights
    assert light.model is None and light.max_context == gemma.max_context
    text = "Will the user like Toy Story (1995)? Answer:"
    assert light.tokenizer(text)["input_ids"] == tok(text)["input_ids"]
    from llmrec.llm.llamacpp import load_llamacpp_tokenizer  # needs transformers only, not llama-cpp-python

    cpp = load_llamacpp_tokenizer(ModelConfig(backend="llama.cpp", n_ctx=1024))
    assert cpp.max_context == 1024 and cpp.tokenizer(text)["input_ids"] == tok(text)["input_ids"]


def test_zero_shot_tallrec_on_real_ml100k(tmp_path, shared_data, gemma):
    data = prepare(PrepareConfig(dataset="ml-100k", protocol="tallrec", data_root=str(shared_data),
                                 out=str(tmp_path / "t")), log=lambda m: None)[1]
    path, res = evaluate(EvaluateConfig(data=str(data), limit=12, run_dir=str(tmp_path / "run")), loaded=gemma,
                         progress=False, log=lambda m: None)
    assert res["run"]["prompts"] == 12 and res["run"]["answer_tokens"] == ["Yes", "No"]
    assert 150 < res["run"]["mean_prompt_tokens"] < 400
    assert 0 < res["metrics"]["mean_score"] < 1 and np.isfinite(res["metrics"]["logloss"])
    assert (path / "plots" / "scores.png").exists()


def test_engine_matches_research_way_on_real_prompts(tmp_path, shared_data, gemma):
    """Batched + prefix-reused scores equal batch-1 full-logit scores on real ReLLa prompts."""
    from llmrec.data.protocols import PreparedData
    from llmrec.prompts import load_template
    from llmrec.prompts.build import PromptData

    data = prepare(PrepareConfig(dataset="ml-1m", protocol="rella", data_root=str(shared_data),
                                 out=str(tmp_path / "r")), log=lambda m: None)[1]
    prep = PreparedData.load(data)
    rows = prep.splits["test"].slice(0, 3).to_pylist()
    texts = PromptData.from_tables(prep.items, prep.users, "ml-1m", 3)
    template = load_template("rella_movie")
    prompts = []
    for row in rows:  # three users, three candidates each (shared contexts)
        hist = texts.history(row["history_items"], row["history_ratings"], 10)
        for item in (row["item"], "1", "2858"):
            p = template.render(gemma.tokenizer, texts.variables(row["user"], item), hist, 1024)
            prompts.append(EncodedPrompt(p.context_ids, p.candidate_ids))
    answer = AnswerTokens.for_prompt_end(gemma.tokenizer, "Answer:")
    with torch.inference_mode():
        ref = []
        for p in prompts:
            logits = gemma.model(input_ids=torch.tensor([p.ids])).logits[0, -1]
            ref.append(torch.softmax(logits[[answer.yes_id, answer.no_id]].double(), 0)[0].item())
    for reuse in ("off", "auto"):
        got = YesNoScorer(gemma.model, answer, ScoringConfig(batch_size=4, prefix_reuse=reuse),
                          pad_token_id=gemma.tokenizer.pad_token_id).score(prompts)
        np.testing.assert_allclose(got, ref, atol=1e-4)


def test_common_prefix_reuse_on_real_tallrec_prompts(tmp_path, shared_data, gemma):
    """TALLRec prompts share the template's instruction header: encoded once, the same scores."""
    import os

    from llmrec.data.prepared import PreparedData
    from llmrec.llm.scoring import MIN_SHARED_PREFIX
    from llmrec.prompts.build import PromptRenderer

    data = prepare(PrepareConfig(dataset="ml-100k", protocol="tallrec", data_root=str(shared_data),
                                 out=str(tmp_path / "t")), log=lambda m: None)[1]
    prep = PreparedData.load(data)
    renderer = PromptRenderer.for_prepared(prep, gemma.tokenizer, split="test")
    rows = prep.splits["test"].slice(0, 5).to_pylist()
    prompts = [EncodedPrompt(p.context_ids, p.candidate_ids) for g in renderer.render(rows) for p in g]
    assert len(os.path.commonprefix([p.ids for p in prompts])) >= MIN_SHARED_PREFIX + 40  # the instruction header
    answer = AnswerTokens.for_renderer(renderer, rows[0])
    with torch.inference_mode():
        ref = [torch.softmax(gemma.model(input_ids=torch.tensor([p.ids])).logits[0, -1][[answer.yes_id, answer.no_id]]
                             .double(), 0)[0].item() for p in prompts]
    got = YesNoScorer.for_loaded(gemma, answer, ScoringConfig(batch_size=2)).score(prompts)
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_summaries_on_real_amazon_games(tmp_path, shared_data, gemma, monkeypatch):
    """The real model summarizes real histories (few-shot, batched == batch-1) and ranks with the summary."""
    import json

    from llmrec.data.prepared import PreparedData
    from llmrec.llm.generation import GenerationConfig, TextGenerator
    from llmrec.summarize import SummarizeConfig, summarize

    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "cache"))
    data = prepare(PrepareConfig(dataset="amazon-games", protocol="trsr", data_root=str(shared_data),
                                 out=str(tmp_path / "g")), log=lambda m: None)[1]
    cfg = SummarizeConfig(data=str(data), out=str(tmp_path / "hier"), limits={"train": 1, "valid": 1, "test": 2},
                          generation={"max_new_tokens": 32, "batch_size": 4})
    path, meta = summarize(cfg, loaded=gemma, log=lambda m: None, progress=False)
    summaries = PreparedData.load(path).splits["test"]["summary"].to_pylist()
    assert meta["template"] == "summary_fewshot" and meta["prompts_generated"] >= 4
    assert all(len(s.split()) >= 4 and "\n" not in s for s in summaries), summaries
    assert sum("user" in s.lower() for s in summaries) >= 1  # the few-shot format is followed
    detail = json.loads((path / "summaries.json").read_text())
    assert detail["model_fingerprint"].startswith("loaded:")

    from llmrec.summarize.templates import load_summary_template
    from llmrec.summarize.transform import ItemTexts, prompt_encoder  # batched == batch-1 on real prompts

    template = load_summary_template("summary_fewshot")
    items = ItemTexts(PreparedData.load(data).items, template, gemma.tokenizer, 48)
    encode = prompt_encoder(gemma.tokenizer, chat=False)
    rows = PreparedData.load(data).splits["test"]["history_items"].to_pylist()[:3]
    prompts = [encode(template.prompt("block", items=[items(i) for i in h[:5]], domain_plural="items")) for h in rows]
    gen = TextGenerator.for_loaded(gemma, GenerationConfig(max_new_tokens=12, stop=["\n"], batch_size=3))
    assert gen.generate(prompts) == [gen.generate([p])[0] for p in prompts]

    _, res = evaluate(EvaluateConfig(data=str(path), limit=2, run_dir=str(tmp_path / "run")), loaded=gemma,
                      progress=False, log=lambda m: None)
    assert res["run"]["prompts"] == 2 * 21 and res["run"]["history_k"] == 5 and 0 <= res["metrics"]["recall@3"] <= 1
