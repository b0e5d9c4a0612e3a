"""Model loading and answer-token lookup (tiny models saved in the test; no downloads)."""

import pytest
import torch

from llmrec.errors import ModelError
from llmrec.llm import AnswerTokens, ModelConfig, load_model, load_tokenizer
from llmrec.llm.answers import AnswerTokenError
from llmrec.llm.gguf import locate_gguf as _locate_gguf
from llmrec.llm.hf import resolve_device, resolve_dtype
from tests.tiny_models import tiny_loaded, tiny_tokenizer


def test_load_local_folder(tmp_path):
    tiny = tiny_loaded("llama")
    tiny.model.save_pretrained(tmp_path / "m")
    tiny.tokenizer.save_pretrained(tmp_path / "m")
    loaded = load_model(ModelConfig(name=str(tmp_path / "m"), device="cpu"))
    assert loaded.dtype == torch.float32 and loaded.device.type == "cpu"
    assert loaded.tokenizer.pad_token_id is not None
    assert not loaded.model.training
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids).logits, tiny.model(ids).logits)
    eager = load_model(ModelConfig(name=str(tmp_path / "m"), device="cpu", attn_implementation="eager"))
    assert eager.model.config._attn_implementation == "eager"
    with torch.no_grad():  # eager attention returns the weights (the attention case study reads them)
        out = eager.model(ids, output_attentions=True)
    assert len(out.attentions) == tiny.model.config.num_hidden_layers
    torch.testing.assert_close(out.logits, tiny.model(ids).logits, atol=1e-5, rtol=1e-4)


def test_tokenizer_only_load_matches_the_full_load(tmp_path):
    """A driver that only renders prompts (``--engine ray``) loads the tokenizer and context window, no weights."""
    tiny = tiny_loaded("llama")
    tiny.model.save_pretrained(tmp_path / "m")
    tiny.tokenizer.save_pretrained(tmp_path / "m")
    config = ModelConfig(name=str(tmp_path / "m"), device="cpu")
    full, light = load_model(config), load_tokenizer(config)
    assert light.model is None and "tokenizer only" in light.source
    assert light.max_context == full.max_context == tiny.model.config.max_position_embeddings
    text = "The user liked Heat and disliked Cats. Answer:"
    assert light.tokenizer(text)["input_ids"] == full.tokenizer(text)["input_ids"]
    assert light.tokenizer.pad_token_id == full.tokenizer.pad_token_id
    with pytest.raises(ModelError, match="model not found"):  # the same checks as a full load
        load_tokenizer(ModelConfig(name=str(tmp_path / "absent"), device="cpu"))


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="model not found"):
        load_model(ModelConfig(name=str(tmp_path / "absent"), device="cpu"))
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "a.gguf").write_bytes(b"x")
    (tmp_path / "two" / "b.gguf").write_bytes(b"x")
    with pytest.raises(ModelError, match="several GGUF"):
        _locate_gguf(str(tmp_path / "two"), None)
    assert _locate_gguf(str(tmp_path / "two" / "a.gguf"), None) == tmp_path / "two" / "a.gguf"
    with pytest.raises(ModelError, match="not found"):
        _locate_gguf(str(tmp_path / "two"), "c.gguf")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "m.gguf").write_bytes(b"x")
    assert _locate_gguf(str(tmp_path / "one"), None).name == "m.gguf"


def test_device_and_dtype_resolution():
    cpu = resolve_device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32  # bf16 is very slow on most CPUs
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}


def test_answer_tokens_follow_the_prompt_end():
    tok = tiny_tokenizer()
    after_newline = AnswerTokens.for_prompt_end(tok, "### Response:\n")
    after_colon = AnswerTokens.for_prompt_end(tok, "Answer:")
    assert after_newline.yes_id == tok.encode("Yes", add_special_tokens=False)[0]
    assert after_colon.yes_id == tok.encode(" Yes", add_special_tokens=False)[0]
    assert after_colon.yes_id != after_colon.no_id
    with pytest.raises(AnswerTokenError, match="same token"):
        AnswerTokens.from_words(tok, "Zebraesque", "Xylophonic")  # both unknown -> the same <unk> id


def test_model_fingerprint_is_the_content_not_the_place(tmp_path, monkeypatch):
    """The same weights give the same fingerprint wherever they lie (experiment keys survive a move to
    another machine); other weights give another; a file is hashed once, then looked up."""
    import shutil

    import llmrec.llm.filehash as filehash
    import llmrec.llm.fingerprint as fp

    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "cache"))
    tiny = tiny_loaded("llama")
    tiny.model.save_pretrained(tmp_path / "a")
    tiny.tokenizer.save_pretrained(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "elsewhere" / "b")
    key = fp.model_fingerprint(ModelConfig(name=str(tmp_path / "a")))
    assert fp.model_fingerprint(ModelConfig(name=str(tmp_path / "elsewhere" / "b"))) == key
    reads = []
    monkeypatch.setattr(filehash, "file_sha256", lambda p: reads.append(p) or "0" * 64)
    assert fp.model_fingerprint(ModelConfig(name=str(tmp_path / "a"))) == key and reads == []  # remembered
    tiny_loaded("llama", seed=1).model.save_pretrained(tmp_path / "a")  # other weights: hashed again
    assert fp.model_fingerprint(ModelConfig(name=str(tmp_path / "a"))) != key and len(reads) == 1
