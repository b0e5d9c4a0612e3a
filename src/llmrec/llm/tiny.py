"""Tiny random causal LMs of a real architecture, built in code: a GPU experiment rehearsed on a CPU.

:func:`build_tiny_model` writes a Hugging Face folder (config, random weights, a tokenizer trained on
the given texts) of the same ``model_type`` as the real model (``llama`` for Vicuna and Llama 2,
``gemma3_text`` for the default model, any other type transformers knows), with a few layers of
width 64: it loads, trains, scores and generates through the same code as the real one, in
seconds. Its tokenizer is a byte-fallback BPE in the SentencePiece style of both families (``▁``
marks a space, unknown characters fall back to bytes, so every text encodes), with the family's
special tokens and, for Gemma, its chat template. Nothing is downloaded; the numbers it gives
mean nothing.

>>> import tempfile
>>> folder = build_tiny_model("llama", tempfile.mkdtemp() + "/tiny", ["Has the user liked Toy Story? Yes No"])
>>> from transformers import AutoConfig, AutoTokenizer
>>> AutoConfig.from_pretrained(folder).model_type, AutoConfig.from_pretrained(folder).num_hidden_layers
('llama', 2)
>>> tok = AutoTokenizer.from_pretrained(folder)
>>> len(tok(" Yes", add_special_tokens=False).input_ids), tok.decode(tok("Émile ☃").input_ids, skip_special_tokens=True)
(1, 'Émile ☃')
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from llmrec.errors import ModelError
from llmrec.io import atomic_directory

__all__ = ["TINY_WIDTHS", "build_tiny_model", "tiny_tokenizer"]

# widths of every tiny model (a head of 16; two layers, so a cache and a LoRA have more than one layer to cover)
TINY_WIDTHS = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "head_dim": 16}

# the family's special tokens, whether a word gets a leading ▁ at the start of a text (SentencePiece's dummy prefix:
# LLaMA yes, Gemma no), and its chat template (base LLaMA / Vicuna folders ship none)
_GEMMA_CHAT = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else "
               "m['role'] }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
               "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
_FAMILIES = {
    "llama": {"bos": "<s>", "eos": "</s>", "pad": "<unk>", "prefix": True, "chat": None, "extra": []},
    "gemma": {"bos": "<bos>", "eos": "<eos>", "pad": "<pad>", "prefix": False, "chat": _GEMMA_CHAT,
              "extra": ["<start_of_turn>", "<end_of_turn>"]},
}
_MARKER = "tiny-model.json"


def _family(model_type: str) -> dict:
    return _FAMILIES["gemma" if model_type.startswith("gemma") else "llama"]


def tiny_tokenizer(texts: Iterable[str], model_type: str = "llama", vocab_size: int = 2048):
    """A byte-fallback BPE tokenizer in the style of ``model_type``'s family, trained on ``texts``.

    The answer words and digits are always in its corpus, so `` Yes`` and `` No`` are one token each.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    family = _family(model_type)
    specials = list(dict.fromkeys(["<unk>", family["bos"], family["eos"], family["pad"], *family["extra"]]))
    corpus = list(texts) + ["Yes No yes no Yes. No. Answer: Yes Answer: No 0 1 2 3 4 5 6 7 8 9"] * 20
    scheme = "first" if family["prefix"] else "never"
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    trainer_tok.train_from_iterator(corpus, trainer)
    learned = json.loads(trainer_tok.to_str())["model"]
    vocab = dict(learned["vocab"])
    for byte in range(256):  # byte fallback: every character encodes, as in the real vocabularies
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)
    steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    tok.decoder = decoders.Sequence(steps + [decoders.Strip(" ", 1, 0)] * family["prefix"])
    tok.add_special_tokens(specials)
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single=f"{family['bos']} $A", pair=f"{family['bos']} $A $B", special_tokens=[(family["bos"], vocab[family["bos"]])])
    out = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=family["bos"], eos_token=family["eos"],
                                  pad_token=family["pad"], unk_token="<unk>",
                                  additional_special_tokens=family["extra"] or None)
    if family["chat"]:
        out.chat_template = family["chat"]
    return out


def build_tiny_model(model_type: str, folder: str | Path, texts: Iterable[str] = (), *, seed: int = 0,
                     max_positions: int = 8192) -> Path:
    """Write a tiny random ``model_type`` model and its tokenizer (trained on ``texts``) to ``folder``.

    The same arguments give the same files (seeded weights; the tokenizer is trained deterministically), so a
    rehearsal that is killed and run again builds the same model; a finished folder is kept as it is.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(folder)
    if (folder / _MARKER).is_file():
        return folder
    texts = list(texts)
    tokenizer = tiny_tokenizer(texts, model_type)
    specials = {name: tokenizer.convert_tokens_to_ids(getattr(tokenizer, f"{name}_token"))
                for name in ("bos", "eos", "pad")}
    try:
        config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), max_position_embeddings=max_positions,
                                      bos_token_id=specials["bos"], eos_token_id=specials["eos"],
                                      pad_token_id=specials["pad"], **TINY_WIDTHS)
    except ValueError as exc:
        raise ModelError(f"a tiny model of type {model_type!r}: transformers does not know it ({exc})") from None
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with atomic_directory(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps({"model_type": model_type, "seed": seed, "texts": len(texts),
                                               "widths": TINY_WIDTHS}, indent=1) + "\n")
    return folder
