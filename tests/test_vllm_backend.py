"""The vLLM backend: its scorer's log-prob handling on a stand-in engine everywhere, the real engine on a GPU.

The stand-in follows vLLM's documented semantics on a tiny transformers model: one generated
token, ``allowed_token_ids`` masking every other logit to -inf, and log-probs either *processed*
(after that mask, ``logprobs_mode="processed_logprobs"``) or *raw* (over the whole vocabulary,
vLLM's default), returned for the top ``logprobs`` tokens.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from llmrec.errors import ModelError
from llmrec.llm import AnswerTokens, EncodedPrompt, GenerationConfig, ScoringConfig, YesNoScorer
from llmrec.llm.vllm import VllmGenerator, VllmModel, VllmScorer
from tests.tiny_models import random_prompts, tiny_llama

ANSWER = AnswerTokens(yes_id=5, no_id=6, yes_text="Yes", no_text="No")


class StandInLLM:
    """``vllm.LLM.generate`` over a tiny transformers model (see the module docstring)."""

    def __init__(self, model, mode: str = "processed_logprobs", texts: dict[tuple, str] | None = None) -> None:
        self.model, self.mode, self.texts, self.calls = model.eval(), mode, texts or {}, []

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append((len(prompts), params, lora_request))
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            if params.get("max_tokens", 1) > 1:  # generation: a canned text per prompt
                text = self.texts.get(tuple(ids), "a fan of racing games.\n\nmore")
                outputs.append(SimpleNamespace(outputs=[SimpleNamespace(text=text, token_ids=text.split(), logprobs=None)]))
                continue
            with torch.no_grad():
                logits = self.model(input_ids=torch.tensor([ids])).logits[0, -1].double()
            if self.mode == "processed_logprobs" and params.get("allowed_token_ids"):
                masked = torch.full_like(logits, float("-inf"))
                allowed = params["allowed_token_ids"]
                masked[allowed] = logits[allowed]
                logits = masked
            if self.mode == "processed_logprobs":  # top-p after the mask; unset = the model's default (Gemma 3: .95)
                probs = torch.softmax(logits, -1)
                order = torch.argsort(probs, descending=True)
                before = torch.cumsum(probs[order], 0) - probs[order]
                logits = logits.clone()
                logits[order[before >= params.get("top_p", 0.95)]] = float("-inf")
            logprobs = torch.log_softmax(logits, -1)
            top = torch.topk(logprobs, params["logprobs"]).indices.tolist()
            step = {t: SimpleNamespace(logprob=float(logprobs[t])) for t in top}
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(text="", token_ids=[top[0]], logprobs=[step])]))
        return outputs


def test_scores_equal_the_transformers_scorer_on_the_same_prompts():
    model = tiny_llama(vocab=16)
    prompts = random_prompts(9, vocab=16, seed=3) + random_prompts(4, vocab=16, seed=4, shared_context=True)
    expected = YesNoScorer(model, ANSWER, ScoringConfig(batch_size=3)).score(prompts)
    engine = StandInLLM(model)
    got = VllmScorer(VllmModel(engine, lora="adapter-request"), ANSWER, batch_size=5).score(prompts)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [n for n, _, _ in engine.calls] == [5, 5, 3]
    params = engine.calls[0][1]
    assert params["allowed_token_ids"] == [5, 6] and params["logprobs"] == 2 and params["max_tokens"] == 1
    assert params["top_p"] == 1.0 and params["top_k"] == -1 and params["min_p"] == 0.0
    assert all(lora == "adapter-request" for _, _, lora in engine.calls)  # the adapter goes with every request


def test_a_confident_answer_keeps_the_other_answers_logprob():
    """With P(yes) > .95 a top-p of .95 (Gemma 3's default) would mask "No" out: the scorer turns top-p off."""
    model = tiny_llama(vocab=16)
    model.lm_head.register_forward_hook(lambda m, i, out: out + 12.0 * (torch.arange(16) == 5))
    prompts = random_prompts(5, vocab=16, seed=6)
    expected = YesNoScorer(model, ANSWER, ScoringConfig(head="full")).score(prompts)
    assert expected.min() > 0.99
    got = VllmScorer(VllmModel(StandInLLM(model)), ANSWER).score(prompts)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_raw_logprobs_without_an_answer_token_are_an_error_not_a_guess():
    engine = StandInLLM(tiny_llama(vocab=16), mode="raw_logprobs")  # vLLM's default: top-2 of the whole vocabulary
    prompts = random_prompts(6, vocab=16, seed=5)
    with pytest.raises(ModelError, match="processed_logprobs"):
        VllmScorer(VllmModel(engine), AnswerTokens(14, 15, "Yes", "No")).score(prompts)


def test_generation_sends_the_settings_and_cuts_at_stop_strings():
    engine = StandInLLM(tiny_llama(vocab=16), texts={(2, 3, 4): "likes puzzle games.\n\n### next"})
    generator = VllmGenerator(VllmModel(engine), GenerationConfig(max_new_tokens=24, stop=["\n\n", "###"]))
    assert generator.generate([[2, 3, 4], [2, 9]]) == ["likes puzzle games.", "a fan of racing games."]
    params = engine.calls[-1][1]
    assert params == {"max_tokens": 24, "stop": ["\n\n", "###"], "temperature": 0.0}  # greedy
    sampled = VllmGenerator(VllmModel(engine), GenerationConfig(do_sample=True, seed=3, temperature=0.5))
    sampled.generate([[2, 3]])
    assert engine.calls[-1][1]["seed"] == 3 and engine.calls[-1][1]["temperature"] == 0.5
    assert generator.generated_tokens > 0
    VllmGenerator(VllmModel(engine), GenerationConfig(repetition_penalty=1.3)).generate([[2, 3]])
    assert engine.calls[-1][1]["repetition_penalty"] == 1.3
    with pytest.raises(ModelError, match="no no_repeat_ngram_size"):
        VllmGenerator(VllmModel(engine), GenerationConfig(no_repeat_ngram_size=3)).generate([[2, 3]])


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_the_backend_without_vllm_is_one_clear_line(tmp_path, tiny_ml1m):
    from click.testing import CliRunner

    from llmrec.cli import main
    from llmrec.data.prepare import PrepareConfig, prepare

    data = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(tiny_ml1m), out=str(tmp_path / "d"),
                                 tallrec={"history_len": 5, "max_samples": 300}), log=lambda m: None)[1]
    result = CliRunner().invoke(main, ["evaluate", "-d", str(data), "--run-dir", str(tmp_path / "run"),
                                       "--set", "model.backend=vllm"])
    assert not (tmp_path / "run").exists()
    assert result.exit_code == 1
    assert 'pip install -e ".[vllm]"' in result.output and "Traceback" not in result.output


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None or not torch.cuda.is_available(),
                    reason="needs vLLM and a CUDA GPU")
def test_real_vllm_matches_the_transformers_backend_on_a_gpu():
    """The default model in float32 on both backends, the same token-id prompts: |P(yes) difference| < 2e-3."""
    from llmrec.llm import ModelConfig, load_model, make_scorer

    texts = ["User liked: Heat, Alien, Toy Story. Will the user like Casino? Answer Yes or No.\nAnswer:",
             "User disliked: Speed 2, Batman & Robin. Will the user like Titanic? Answer Yes or No.\nAnswer:"]
    hf = load_model(ModelConfig(device="cuda", dtype="float32"))
    answer = AnswerTokens.for_prompt_end(hf.tokenizer, "Answer:")
    prompts = [EncodedPrompt(tuple(hf.tokenizer(t)["input_ids"]), ()) for t in texts]
    expected = make_scorer(hf, answer).score(prompts)
    del hf
    torch.cuda.empty_cache()
    vl = load_model(ModelConfig(backend="vllm", dtype="float32"))
    got = make_scorer(vl, answer).score(prompts)
    assert np.abs(got - expected).max() < 2e-3
