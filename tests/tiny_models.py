"""Tiny random causal LMs built in code (no downloads) and a toy tokenizer."""

from __future__ import annotations

import torch


def tiny_llama(vocab: int = 64, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg).eval()


def tiny_gemma3(vocab: int = 64, seed: int = 0, sliding_window: int = 8):
    """Gemma 3 text model with a short sliding window, so caches cross the window."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                           sliding_window=sliding_window, layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                           pad_token_id=0, bos_token_id=2, eos_token_id=1, final_logit_softcapping=30.0)
    return Gemma3ForCausalLM(cfg).eval()


def random_prompts(n: int, vocab: int = 64, seed: int = 0, shared_context: bool = False):
    from llmrec.llm import EncodedPrompt

    g = torch.Generator().manual_seed(seed)
    ctx = tuple(torch.randint(3, vocab, (int(torch.randint(5, 20, (1,), generator=g)),), generator=g).tolist())
    out = []
    for _ in range(n):
        if not shared_context:
            ctx = tuple(torch.randint(3, vocab, (int(torch.randint(3, 25, (1,), generator=g)),), generator=g).tolist())
        cand = tuple(torch.randint(3, vocab, (int(torch.randint(1, 7, (1,), generator=g)),), generator=g).tolist())
        out.append(EncodedPrompt((2, *ctx), cand))
    return out


def tiny_tokenizer(extra_text: str = ""):
    """A word-level tokenizer trained in the test on the shipped templates (plus ``extra_text``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from llmrec.prompts import TEMPLATES

    corpus = [p.read_text() for p in TEMPLATES.values()] + [extra_text, "Yes No yes no Movie Book Item by stars 0 1 2 3 4 5 6 7 8 9"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")


def tiny_loaded(arch: str = "llama", seed: int = 0):
    """A LoadedModel with a tiny random model and the tiny tokenizer (vocabularies match)."""
    from llmrec.llm import LoadedModel

    tok = tiny_tokenizer()
    vocab = len(tok)
    model = (tiny_llama if arch == "llama" else tiny_gemma3)(vocab=vocab, seed=seed)
    model.config.max_position_embeddings = 1024
    return LoadedModel(model=model, tokenizer=tok, device=torch.device("cpu"), dtype=torch.float32, source=f"tiny-{arch}")
