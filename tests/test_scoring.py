"""The scoring engine on tiny random models: batching, padding and prefix reuse change nothing."""

import numpy as np
import pytest
import torch

from llmrec.errors import ModelError
from llmrec.llm import AnswerTokens, EncodedPrompt, ScoringConfig, YesNoScorer
from tests.tiny_models import random_prompts, tiny_gemma3, tiny_llama

ANSWER = AnswerTokens(yes_id=5, no_id=6, yes_text="Yes", no_text="No")
MODELS = {"llama": tiny_llama, "gemma3": tiny_gemma3}


def reference(model, prompts):
    """Each prompt alone, full-vocabulary logits, two-way softmax: the research code's way."""
    out = []
    with torch.no_grad():
        for p in prompts:
            logits = model(input_ids=torch.tensor([p.ids])).logits[0, -1]
            pair = torch.stack([logits[ANSWER.yes_id], logits[ANSWER.no_id]]).double()
            out.append(torch.softmax(pair, 0)[0].item())
    return np.array(out)


@pytest.mark.parametrize("arch", MODELS)
@pytest.mark.parametrize("padding", ["left", "right"])
@pytest.mark.parametrize("head", ["answer_rows", "full"])
def test_batched_equals_unbatched(arch, padding, head):
    model = MODELS[arch]()
    prompts = random_prompts(13, seed=1)
    expected = reference(model, prompts)
    cfg = ScoringConfig(batch_size=4, padding_side=padding, head=head, prefix_reuse="off")
    got = YesNoScorer(model, ANSWER, cfg).score(prompts)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert not np.allclose(expected, expected[0])  # scores differ between prompts


@pytest.mark.parametrize("arch", MODELS)
@pytest.mark.parametrize("head", ["answer_rows", "full"])
def test_prefix_reuse_equals_full_prompts(arch, head):
    # 21 candidates sharing a context longer than Gemma's sliding window of 8 tokens
    model = MODELS[arch]()
    prompts = random_prompts(21, seed=2, shared_context=True) + random_prompts(5, seed=3)
    expected = reference(model, prompts)
    for per_pass in (32, 4):  # one pass, and several passes that copy the cache
        cfg = ScoringConfig(batch_size=8, head=head, max_candidates_per_pass=per_pass)
        got = YesNoScorer(model, ANSWER, cfg).score(prompts)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def with_header(prompts, header):
    """The same prompts behind a common instruction header (as a template's fixed text)."""
    return [EncodedPrompt((2, *header, *p.context[1:]), p.candidate) for p in prompts]


@pytest.mark.parametrize("arch", MODELS)
@pytest.mark.parametrize("head", ["answer_rows", "full"])
def test_common_prefix_of_a_call_is_encoded_once_with_the_same_scores(arch, head):
    model = MODELS[arch]()
    header = tuple(range(10, 30))  # 20 tokens: longer than Gemma's sliding window of 8, over the threshold
    prompts = with_header(random_prompts(11, seed=5), header)
    expected = reference(model, prompts)
    scorer = YesNoScorer(model, ANSWER, ScoringConfig(batch_size=3, head=head))
    encoded = []
    runner = scorer.model if head == "full" else scorer.decoder
    hook = runner.register_forward_pre_hook(lambda _m, _a, kw: encoded.append(kw["input_ids"].shape), with_kwargs=True)
    seen = []
    try:
        got = scorer.score(prompts, progress=seen.append)
    finally:
        hook.remove()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert encoded[0] == (1, len(header) + 1)  # BOS + header once, then only the tails, 3 at a time
    assert all(shape[0] <= 3 and shape[1] <= max(len(p) for p in prompts) - len(header) - 1 for shape in encoded[1:])
    assert sum(seen) == len(prompts) and len(seen) == 4
    # without reuse (or under the threshold) every prompt is encoded whole
    off = YesNoScorer(model, ANSWER, ScoringConfig(batch_size=3, head=head, prefix_reuse="off")).score(prompts)
    np.testing.assert_allclose(off, got, atol=1e-4)


@pytest.mark.parametrize("arch", MODELS)
@pytest.mark.parametrize("head", ["answer_rows", "full"])
def test_kept_prefixes_are_encoded_once_across_calls_with_the_same_scores(arch, head):
    """With ``keep_prefixes``, the header common to a call (and a context shared by candidates) is encoded in the
    first call only; later calls with the same prefix reuse a copy of its keys and values and score the same.

    Mutation: storing the cache the call then extends in place (no copy), or a key without the prefix's tokens:
    the second call's scores differ or it encodes the header again.
    """
    model = MODELS[arch]()
    header = tuple(range(10, 30))
    first, second = (with_header(random_prompts(7, seed=s), header) for s in (5, 6))
    shared = random_prompts(9, seed=2, shared_context=True)
    expected = [reference(model, p) for p in (first, second, shared, shared)]
    scorer = YesNoScorer(model, ANSWER, ScoringConfig(batch_size=3, head=head))
    scorer.keep_prefixes(64)
    runner = scorer.model if head == "full" else scorer.decoder
    encoded = []
    hook = runner.register_forward_pre_hook(lambda _m, _a, kw: encoded.append(kw["input_ids"].shape), with_kwargs=True)
    try:
        got = [scorer.score(first)]
        n_first = len(encoded)
        got += [scorer.score(second), scorer.score(shared), scorer.score(shared)]
    finally:
        hook.remove()
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-4)
    assert encoded[0] == (1, len(header) + 1)
    assert (1, len(header) + 1) not in encoded[n_first:]  # the header: encoded in the first call only
    assert scorer.kept_hits == 2 and len(scorer._kept) == 2  # the header, and the shared context once


@pytest.mark.parametrize("arch", MODELS)
def test_prompts_scored_one_at_a_time_share_their_kept_header(arch):
    """One prompt per call (a server's sequential requests): the first is scored whole, the second keeps the start
    it shares with the first (the header), and every later one runs on that kept header; the scores are those of
    the whole prompts.

    Mutation: no lookup of kept prefixes for single prompts, or a prefix that takes the whole prompt: the encoded
    shapes or the scores differ.
    """
    model = MODELS[arch]()
    header = tuple(range(10, 30))
    prompts = with_header(random_prompts(5, seed=7), header)
    expected = reference(model, prompts)
    scorer = YesNoScorer(model, ANSWER, ScoringConfig(batch_size=4))
    scorer.keep_prefixes(64)
    encoded = []
    hook = scorer.decoder.register_forward_pre_hook(lambda _m, _a, kw: encoded.append(kw["input_ids"].shape),
                                                    with_kwargs=True)
    try:
        got = np.concatenate([scorer.score([p]) for p in prompts])
    finally:
        hook.remove()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert encoded[0] == (1, len(prompts[0]))  # whole
    assert (1, len(header) + 1) in encoded[1:3] and scorer.kept_hits == 3  # kept at the 2nd, reused by the rest
    assert all(shape[1] <= len(p) - len(header) - 1 for shape, p in zip(encoded[-3:], prompts[-3:]))


def test_kept_prefixes_stay_within_their_budget_least_recently_used_first():
    """The kept keys and values never exceed the budget: a prefix that does not fit alone is not kept, and the least
    recently used prefix goes first."""
    from llmrec.llm.scoring import _cache_bytes

    model = tiny_llama()
    scorer = YesNoScorer(model, ANSWER, ScoringConfig(batch_size=4))
    headers = [tuple(range(10 + i, 30 + i)) for i in range(3)]
    calls = [with_header(random_prompts(3, seed=i), h) for i, h in enumerate(headers)]
    size = _cache_bytes(model(input_ids=torch.tensor([[2, *headers[0]]]), use_cache=True).past_key_values)
    scorer._kept_budget = 2 * size  # room for two headers of this length
    for call in (calls[0], calls[1], calls[0], calls[2]):  # header 1 is the least recently used at the end
        scorer.score(call)
        assert scorer.kept_bytes <= 2 * size
    assert [key[1][1:] for key in scorer._kept] == [headers[0], headers[2]]
    scorer._kept_budget = size // 2
    scorer._kept.clear(), setattr(scorer, "_kept_bytes", 0)
    scorer.score(calls[1])
    assert scorer.kept_bytes == 0 and not scorer._kept
    scorer.keep_prefixes(0)
    scorer.score(calls[1])
    assert not scorer._kept


def test_short_common_prefix_or_single_prompt_scores_whole_prompts():
    model = tiny_llama()
    for prompts in (with_header(random_prompts(6, seed=6), (10, 11, 12)), with_header(random_prompts(1, seed=6), tuple(range(10, 40)))):
        scorer = YesNoScorer(model, ANSWER, ScoringConfig(batch_size=8))
        encoded = []
        hook = scorer.decoder.register_forward_pre_hook(
            lambda _m, _a, kw, seen=encoded: seen.append(kw["input_ids"].shape), with_kwargs=True)
        try:
            got = scorer.score(prompts)
        finally:
            hook.remove()
        np.testing.assert_allclose(got, reference(model, prompts), atol=1e-4)
        assert encoded == [(len(prompts), max(len(p) for p in prompts))]


def test_max_batch_tokens_and_progress():
    model = tiny_llama()
    prompts = random_prompts(10, seed=4)
    seen = []
    scorer = YesNoScorer(model, ANSWER, ScoringConfig(batch_size=10, max_batch_tokens=40, prefix_reuse="off"))
    batches = scorer._batches([len(p) for p in prompts])
    assert all(len(b) * max(len(prompts[i]) for i in b) <= 40 or len(b) == 1 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(10))
    np.testing.assert_allclose(scorer.score(prompts, progress=seen.append), reference(model, prompts), atol=1e-4)
    assert sum(seen) == 10


def test_bad_prompts():
    scorer = YesNoScorer(tiny_llama(), ANSWER)
    with pytest.raises(ModelError, match="empty"):
        scorer.score([EncodedPrompt((), ())])
    with pytest.raises(ModelError, match="context window"):
        scorer.score([EncodedPrompt(tuple(range(3, 60)) * 5, (7,))])


def test_int8_path_stays_close_on_a_tiny_model():
    from llmrec.llm.quantize import quantize_int8

    model = tiny_llama()
    prompts = random_prompts(8, seed=5)
    fp32 = YesNoScorer(model, ANSWER).score(prompts)
    q = quantize_int8(model)
    assert "Int8" in type(q.model.layers[0].self_attn.q_proj.weight).__name__  # torchao's int8 tensor
    assert type(q.model.layers[0].mlp.down_proj.weight.data) is torch.Tensor  # down_proj stays float32
    assert type(q.lm_head.weight.data) is torch.Tensor  # and so does the head
    got = YesNoScorer(q, ANSWER).score(prompts)
    np.testing.assert_allclose(got, fp32, atol=0.02)
    assert type(model.model.layers[0].self_attn.q_proj) is torch.nn.Linear  # the original is untouched


@pytest.mark.parametrize("arch", MODELS)
def test_smoothing_keeps_the_float_function(arch):
    """SmoothQuant only moves scale between activations and weights: same scores in float."""
    import copy

    from llmrec.llm.quantize import smooth

    model = MODELS[arch]()
    with torch.no_grad():  # give the norms non-trivial scales so that folding is exercised
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    prompts = random_prompts(6, seed=6)
    before = YesNoScorer(model, ANSWER).score(prompts)
    smoothed = copy.deepcopy(model)
    assert smooth(smoothed, [p.ids for p in prompts[:3]], alpha=0.75)
    changed = [n for (n, a), (_, b) in zip(model.named_parameters(), smoothed.named_parameters()) if not torch.equal(a, b)]
    assert any("q_proj" in n for n in changed) and any("down_proj" in n for n in changed)
    np.testing.assert_allclose(YesNoScorer(smoothed, ANSWER).score(prompts), before, atol=1e-4)


@pytest.mark.parametrize("head", ["answer_rows", "full"])
@pytest.mark.parametrize("reuse", ["auto", "off"])
def test_soft_capping_is_applied_where_logits_exceed_the_cap(head, reuse):
    """Gemma caps logits with 30 * tanh(x / 30): give both answer rows a large shared part, so the raw
    logits sit far past the cap while their difference stays moderate; the cap then shrinks it."""
    model = tiny_gemma3(vocab=80)
    prompts = random_prompts(8, seed=3, shared_context=reuse == "auto")  # tokens < 64: rows 64+ are free
    decoder = model.get_decoder()
    with torch.no_grad():
        hidden = torch.stack([decoder(input_ids=torch.tensor([p.ids])).last_hidden_state[0, -1] for p in prompts])
        direction = hidden.mean(0) / hidden.mean(0).norm() ** 2
        model.lm_head.weight[ANSWER.yes_id] += 80 * direction
        model.lm_head.weight[ANSWER.no_id] += 80 * direction
    rows = model.lm_head.weight[[ANSWER.yes_id, ANSWER.no_id]]
    with torch.no_grad():
        raw = torch.stack([decoder(input_ids=torch.tensor([p.ids])).last_hidden_state[0, -1] @ rows.T
                           for p in prompts]).double()
    assert raw.abs().max() > 60  # far past the cap: tanh compresses the yes/no difference
    uncapped = torch.softmax(raw, -1)[:, 0].numpy()
    expected = reference(model, prompts)  # the model's own (capped) logits
    assert np.abs(expected - uncapped).max() > 0.02  # the cap changes the scores here (tolerance below: 1e-4)
    got = YesNoScorer(model, ANSWER, ScoringConfig(head=head, prefix_reuse=reuse, batch_size=3)).score(prompts)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_shipped_int8_path_with_tokenizer_smooths_then_quantizes(tmp_path):
    """The path `model.quantize=int8` takes: SmoothQuant calibrated on text from the tokenizer, then W8A8."""
    pytest.importorskip("torchao")
    from llmrec.llm import ModelConfig, load_model
    from llmrec.llm.quantize import quantize_int8
    from tests.tiny_models import tiny_loaded

    tiny = tiny_loaded("gemma3")
    with torch.no_grad():
        for name, p in tiny.model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    prompts = random_prompts(8, vocab=len(tiny.tokenizer), seed=4)
    answer = AnswerTokens(5, 6, "Yes", "No")
    fp32 = YesNoScorer(tiny.model, answer).score(prompts)
    smoothed = quantize_int8(tiny.model, tiny.tokenizer)
    plain = quantize_int8(tiny.model, None)  # no tokenizer: no calibration text, no smoothing
    norm = "model.layers.0.input_layernorm.weight"
    assert not torch.equal(dict(smoothed.named_parameters())[norm], dict(plain.named_parameters())[norm])
    np.testing.assert_allclose(YesNoScorer(smoothed, answer).score(prompts), fp32, atol=0.03)

    tiny.model.save_pretrained(tmp_path / "m")
    tiny.tokenizer.save_pretrained(tmp_path / "m")
    loaded = load_model(ModelConfig(name=str(tmp_path / "m"), device="cpu", quantize="int8"))
    assert "SmoothQuant + int8" in loaded.source
    assert "Int8" in type(loaded.model.model.layers[0].self_attn.q_proj.weight).__name__
    np.testing.assert_allclose(YesNoScorer(loaded.model, answer).score(prompts), fp32, atol=0.03)
