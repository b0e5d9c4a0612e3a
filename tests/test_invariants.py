"""Invariants the reported numbers rest on, each checked against an independent computation.

Every test names in its docstring the mutation of the source that breaks the invariant ("Mutation: ..."); each was
applied by hand and seen to fail the test (the commands and failure lines are in the issue-34 report). The models
are tiny random ones built in the test (tests/tiny_models.py), the data tiny MovieLens-format archives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import PreparedData
from llmrec.evaluate import EvaluateConfig, evaluate
from llmrec.train import TrainConfig, train
from tests.conftest import random_ratings, write_ml1m_zip
from tests.tiny_models import tiny_loaded

QUIET = dict(progress=False, log=lambda m: None)


def _scores(run: Path) -> pd.Series:
    """A run folder's predictions, by sample id."""
    preds = pd.read_parquet(run / "predictions.parquet")
    return preds.set_index("sample_id")["score"].sort_index()


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    """A TALLRec folder from a random ML-1M-format archive and a tiny Llama saved as a model folder."""
    root = tmp_path_factory.mktemp("invariants")
    zip_path = write_ml1m_zip(root / "ml-1m.zip", random_ratings(30, 60, (8, 40)))
    data = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(zip_path), out=str(root / "tallrec"),
                                 tallrec={"history_len": 5, "max_samples": 300}), log=lambda m: None)[1]
    loaded = tiny_loaded("llama")
    model = root / "tiny-llama"
    loaded.model.save_pretrained(model)
    loaded.tokenizer.save_pretrained(model)
    return {"root": root, "data": data, "model": {"name": str(model), "device": "cpu"}}


@pytest.fixture(scope="module")
def selected_run(tiny_world):
    """A LoRA run whose validation curve peaks early: selection keeps the adapter of step 2 of 8.

    Seed 0 at lr 1e-2 on 16 samples: validation AUC .534 / .509 / .428 / .437 at steps 2 / 4 / 6 / 8 (evaluated
    every epoch, no untrained point), so the selected adapter is not the last one and scores differently."""
    cfg = TrainConfig(data=str(tiny_world["data"]), train_samples=16, seed=0, model=tiny_world["model"],
                      run_dir=str(tiny_world["root"] / "selected"),
                      optim={"epochs": 4, "batch_size": 8, "learning_rate": 1e-2},
                      selection={"limit": 30, "at_start": False}, test={"limit": 20})
    path, result = train(cfg, **QUIET)
    return path, result


# ---------------------------------------------------------------------------------------------- selection
def test_test_predictions_come_from_the_selected_adapter(selected_run, tiny_world):
    """The test split of a train run is scored with the adapter validation selected, not the last one.

    The saved best adapter (``best-adapter/``) and the run's ``adapter/`` are each scored afresh by
    ``llmrec.evaluate`` (the model loaded from its folder, the adapter from disk) on the run's test samples; both
    must give the run's test predictions.

    Mutation: ``chosen = None`` after ``best = selector.best() ...`` in src/llmrec/train/run.py (keep the last
    adapter): the test predictions then come from the step-8 adapter and differ from the best adapter's scores.
    Mutation: drop ``set_peft_model_state_dict(...)`` in the same function (copy the best adapter to ``adapter/`` but
    score the last weights still in memory): the run's predictions differ from its own ``adapter/``.
    """
    path, result = selected_run
    evaluations = result["selection"]["evaluations"]
    best, last = result["selection"]["best"], max(evaluations, key=lambda e: e["step"])
    assert best["step"] != last["step"], "the setup must select an adapter other than the last (see the fixture)"
    assert best["auc"] > last["auc"]
    run_scores = _scores(path / "test")
    limit = len(run_scores)
    for name, adapter in (("best", path / "best-adapter"), ("run", path)):
        out, _ = evaluate(EvaluateConfig(data=str(tiny_world["data"]), limit=limit, model=tiny_world["model"],
                                         adapter=str(adapter), run_dir=str(tiny_world["root"] / f"rescore-{name}")),
                          **QUIET)
        fresh = _scores(out)
        assert list(fresh.index) == list(run_scores.index)
        np.testing.assert_allclose(fresh.to_numpy(), run_scores.to_numpy(), atol=1e-5, err_msg=name)


def test_a_served_lora_run_returns_its_evaluation_scores(selected_run):
    """``llmrec serve --run <train run>`` (the settings of the run: its data, model, prompt settings and adapter)
    answers the run's test predictions for the same samples.

    Mutation: ``out["adapter"] = None`` instead of ``str(run)`` in ``settings_from_run``
    (src/llmrec/serve/config.py): the settings name no adapter. Mutation: ``load_model(config.model, adapter=None,
    merge=False)`` in ``RecommenderService.load`` (src/llmrec/serve/service.py): the base model is served and its
    scores differ from the run's (.4828 against .4799 for the first sample).
    """
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from llmrec.serve import ServeConfig, settings_from_run
    from llmrec.serve.app import create_app
    from llmrec.serve.service import RecommenderService, request_body

    path, _ = selected_run
    settings = settings_from_run(path)
    assert settings.get("adapter") == str(path)
    service = RecommenderService.load(ServeConfig(**settings), log=lambda m: None)
    preds = pd.read_parquet(path / "test" / "predictions.parquet")
    rows = {r["sample_id"]: r for r in PreparedData.load(settings["data"]).split("test").to_pylist()}
    with TestClient(create_app(service)) as client:
        for sample_id, score in zip(preds["sample_id"], preds["score"]):
            row = rows[sample_id]
            got = client.post("/v1/score", json=request_body(row, [row["item"]]))
            assert got.status_code == 200, got.text
            assert got.json()["scores"][0]["score"] == pytest.approx(score, abs=1e-4), sample_id


# ---------------------------------------------------------------------------------------------- few-shot rows
def test_a_baseline_and_a_lora_row_train_on_the_same_rows(tiny_world, tmp_path):
    """An experiment with a LoRA row and a baseline row at the same shots and seeds: each run folder names the rows
    it trained on (``train_samples.json``), and the two agree seed by seed (and differ between seeds).

    Mutation: ``seed = config.seed + 1`` for the few-shot draw in ``run_baseline`` (src/llmrec/baselines/run.py):
    the baseline trains on other rows. Mutation: ``indices = sample_indices(n_rows, config.train_samples, seed + 1)``
    in ``check_train`` (src/llmrec/train/run.py): the LoRA run does.
    """
    from llmrec.data.sampling import sample_indices
    from llmrec.experiments import run_experiment

    model = tiny_world["model"]
    exp = {"name": "rows", "metrics": ["auc"], "steps": [
        {"name": "lora", "train": {"data": str(tiny_world["data"]), "train_samples": 16, "model": model,
                                   "optim": {"max_steps": 1, "batch_size": 8}, "selection": {"enabled": False},
                                   "test": {"limit": 40}}, "seeds": [0, 1]},
        {"name": "floor", "baseline": {"model": "logreg", "data": str(tiny_world["data"]), "train_samples": 16,
                                       "train": {"epochs": 1}, "test": {"limit": 40}}, "seeds": [0, 1]}]}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp))
    out = tmp_path / "out"
    run_experiment(tmp_path / "exp.yaml", out, **QUIET)
    split = PreparedData.load(tiny_world["data"]).split("train", columns=["sample_id"])["sample_id"].to_pylist()
    used = {}
    for seed in (0, 1):
        lora = json.loads((out / "lora" / f"seed-{seed}" / "train_samples.json").read_text())
        floor = json.loads((out / "floor" / f"seed-{seed}" / "train_samples.json").read_text())
        assert lora["samples"] == floor["samples"] == 16 and lora["split"] == floor["split"] == "train"
        assert lora["sample_ids"] == floor["sample_ids"], seed
        # and they are the rows the seeded draw names (the record is not a copy of a constant)
        assert lora["sample_ids"] == [split[i] for i in sample_indices(len(split), 16, seed)]
        used[seed] = lora["sample_ids"]
    assert used[0] != used[1]


# ---------------------------------------------------------------------------------------------- instruction stage
def test_rec_tuning_starts_from_the_instruction_stage_adapter(tiny_world, tmp_path):
    """TALLRec's two stages: the LoRA weights at the start of stage 2 (rec tuning) are the adapter stage 1
    (instruction tuning) saved, in a straight run and in a run resumed after stage 1.

    Mutation: ``return get_peft_model(model, config.lora.to_peft())`` as the first line of the ``if (done /
    "adapter_config.json").exists()`` branch of ``_base_adapter`` (src/llmrec/train/run.py; a resumed run forgets
    stage 1). Mutation: zero the LoRA ``B`` matrices before ``return trainer.model`` at the end of ``_base_adapter``
    (stage 2 starts from a fresh adapter).
    """
    from peft import get_peft_model_state_dict, load_peft_weights
    from transformers import TrainerCallback

    records = [{"instruction": "Name a colour.", "input": "", "output": "Blue"},
               {"instruction": "Answer Yes or No.", "input": "Is the sky blue?", "output": "Yes."}] * 4
    (tmp_path / "alpaca.json").write_text(json.dumps(records))

    class AtStart(TrainerCallback):
        """Keeps the LoRA weights when stage 2 begins (the callbacks of ``train`` go to the rec-tuning trainer)."""

        def __init__(self, stop: bool = False):
            self.weights, self.stop = None, stop

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.weights = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
            if self.stop:
                raise KeyboardInterrupt("stopped after stage 1")

    cfg = TrainConfig(data=str(tiny_world["data"]), train_samples=8, run_dir=str(tmp_path / "run"),
                      optim={"max_steps": 2, "batch_size": 4},
                      instruction={"data": str(tmp_path / "alpaca.json"), "learning_rate": 1e-2},
                      selection={"enabled": False}, test={"enabled": False})

    def check(seen: dict):
        saved = load_peft_weights(str(tmp_path / "run" / "instruction" / "adapter"))
        assert seen.keys() == saved.keys() and seen
        assert any(k.endswith("lora_B.weight") and saved[k].abs().max() > 0 for k in saved)  # stage 1 trained
        for k in saved:
            torch.testing.assert_close(seen[k], saved[k], atol=1e-6, rtol=1e-5, msg=k)

    first = AtStart(stop=True)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, loaded=tiny_loaded("llama"), callbacks=[first], **QUIET)
    check(first.weights)
    again = AtStart()  # the run resumed: stage 1 is done and read from its folder
    train(cfg, loaded=tiny_loaded("llama"), callbacks=[again], **QUIET)
    check(again.weights)


# ---------------------------------------------------------------------------------------------- prompts
# TALLRec's prompt as its authors train and test with it: the Alpaca wrapper of finetune_rec.py's generate_prompt
# (SAI990323/TALLRec) around the instruction and input of their released data/movie/*.json (instruction copied
# verbatim; the input lists quoted titles oldest first, joined by ", "). Their generate_prompt also carries a stray
# lint comment ("noqa: E501") inside the first line, pasted into the string by mistake; the released text and the paper's
# figure do not, and neither does this.
TALLREC_INSTRUCTION = ("Given the user's preference and unpreference, identify whether the user will like the target "
                       "movie by answering \"Yes.\" or \"No.\".")
TALLREC_INPUT = ('User Preference: "Rebel Without a Cause (1955)", "Dave (1993)", "Return of the Pink Panther, The (1974)"\n'
                 'User Unpreference: "Kalifornia (1993)", "Perez Family, The (1995)"\n'
                 'Whether the user will like the target movie "Jurassic Park (1993)"?')
TALLREC_GOLDEN = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                  "Write a response that appropriately completes the request.\n\n"
                  f"### Instruction:\n{TALLREC_INSTRUCTION}\n\n### Input:\n{TALLREC_INPUT}\n\n### Response:\n")


@pytest.fixture(scope="module")
def golden_folder(tmp_path_factory):
    """Users rating seven movies (ML-1M titles) in the same order; user 1's second sample is the golden one:
    history Rebel (4), Kalifornia (2), Dave (4), Pink Panther (5), Perez Family (1), target Jurassic Park."""
    root = tmp_path_factory.mktemp("golden")
    movies = [(1, "Paris, Texas (1984)", "Drama"), (2, "Rebel Without a Cause (1955)", "Drama"),
              (3, "Kalifornia (1993)", "Thriller"), (4, "Dave (1993)", "Comedy"),
              (5, "Return of the Pink Panther, The (1974)", "Comedy"), (6, "Perez Family, The (1995)", "Romance"),
              (7, "Jurassic Park (1993)", "Action")]
    ratings = [(1, m, r, 1000 + 10 * m) for m, r in zip(range(1, 8), [5, 4, 2, 4, 5, 1, 4])]
    ratings += [(2, m, 3, 1000 + 10 * m) for m in range(1, 8)]
    # later users (each a like then a dislike at the end) so every split, valid and test included, has both labels
    ratings += [(u, m, 5 if m == 6 else 1 if m == 7 else 3, 10_000 * u + 10 * m) for u in range(3, 13)
                for m in range(1, 8)]
    zip_path = write_ml1m_zip(root / "ml-1m.zip", ratings, movies)
    return prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(zip_path), out=str(root / "t"),
                                 tallrec={"history_len": 5}), log=lambda m: None)[1]


def _golden_row(folder):
    rows = PreparedData.load(folder).split("train").to_pylist()
    (row,) = [r for r in rows if r["user"] == "1" and r["item"] == "7"]
    return row


def test_tallrec_prompt_is_the_papers_text(golden_folder):
    """The TALLRec movie prompt of a fixed sample, rendered by the template the protocol uses, is the paper's text
    character for character (:data:`TALLREC_GOLDEN`).

    Mutation: any edit of the wording, quoting, separators or blank lines of
    src/llmrec/prompts/templates/tallrec_movie.yaml, e.g. ``join(", ")`` -> ``join(",")`` in the preference line, or
    ``map("quote")`` dropped: the rendered text differs from the golden string.
    """
    from llmrec.prompts.build import PromptRenderer
    from tests.tiny_models import tiny_tokenizer

    renderer = PromptRenderer.for_prepared(PreparedData.load(golden_folder), tiny_tokenizer(), split="train",
                                           max_tokens=None, chat="off")
    assert renderer.template.name == "tallrec_movie"
    (prompt,), = renderer.render([_golden_row(golden_folder)])
    assert prompt.text == TALLREC_GOLDEN
    assert prompt.history_kept == prompt.history_total == 5


def test_tallrec_release_rows_render_to_the_same_text():
    """A row of TALLRec's released splits (instruction + input, imported as the ``instruction`` protocol) renders
    with the ``alpaca`` template to the same golden text as the movie template renders our own sample.

    Mutation: ``### Input:`` -> ``### Input:\\n`` (an extra blank line) or a changed preamble in
    src/llmrec/prompts/templates/alpaca.yaml.
    """
    from llmrec.prompts import load_template
    from llmrec.prompts.build import render_instruction
    from tests.tiny_models import tiny_tokenizer

    row = {"sample_id": 0, "instruction": TALLREC_INSTRUCTION, "input": TALLREC_INPUT}
    (prompt,) = render_instruction([row], load_template("alpaca"), tiny_tokenizer(), None, chat=False)
    assert prompt.text == TALLREC_GOLDEN


CHAT_TEMPLATE = ("{% for m in messages %}<|user|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def test_the_chat_template_wraps_exactly_the_plain_prompt(golden_folder):
    """With ``chat: on`` a prompt is the tokenizer's chat template applied to the plain prompt as one user turn
    (with the generation prompt): the text equals ``apply_chat_template`` of the chat-off text and a golden string,
    and the token ids are those of that text.

    Mutation: ``add_generation_prompt=False`` in ``encode`` (src/llmrec/prompts/template.py): the assistant turn is
    missing. Mutation: ``context + SEPARATOR + candidate`` -> ``context.strip() + SEPARATOR + candidate`` there: the
    text inside the turn differs.
    """
    from llmrec.prompts.build import PromptRenderer
    from tests.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer("<|user|> <|end|> <|assistant|>")
    tok.chat_template = CHAT_TEMPLATE
    prepared = PreparedData.load(golden_folder)
    row = _golden_row(golden_folder)
    (plain,), = PromptRenderer.for_prepared(prepared, tok, split="train", max_tokens=None, chat="off").render([row])
    (chat,), = PromptRenderer.for_prepared(prepared, tok, split="train", max_tokens=None, chat="on").render([row])
    expected = tok.apply_chat_template([{"role": "user", "content": plain.text}], tokenize=False,
                                       add_generation_prompt=True)
    assert chat.text == expected == f"<|user|>\n{TALLREC_GOLDEN}<|end|>\n<|assistant|>\n"
    assert list(chat.context_ids + chat.candidate_ids) == tok(expected, add_special_tokens=False)["input_ids"]
    assert chat.candidate_ids[-len(tok("<|end|>\n<|assistant|>\n", add_special_tokens=False)["input_ids"]):] == \
        tuple(tok("<|end|>\n<|assistant|>\n", add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------------------------------------- generation
def _greedy_reference(model, prompt: list[int], max_new_tokens: int, stops: set[int]) -> list[int]:
    """Greedy decoding the plainest way: one unpadded sequence, the whole of it through the model at every step
    (no cache, no mask, no batch), the argmax of the last position's logits appended."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    new = ids[len(prompt):]
    end = next((j for j, t in enumerate(new) if t in stops), len(new))
    return new[:end]


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_batched_generation_equals_a_plain_greedy_loop(arch):
    """The batched generator summaries use (length-sorted, left-padded batches, KV cache) gives the token ids of a
    plain greedy loop over ``model(ids).logits[:, -1].argmax()`` for every prompt (Gemma 3's 8-token sliding window is
    crossed by the longer prompts).

    Mutation: ``mask[r, width - len(s):] = 1`` -> ``mask[r, :] = 1`` in ``TextGenerator._new_tokens``
    (src/llmrec/llm/generation.py; the padding is attended to): the padded rows' tokens differ.
    Mutation: ``out[:, width:]`` -> ``out[:, width + 1:]`` there (the first new token dropped).
    """
    from llmrec.llm.generation import GenerationConfig, TextGenerator

    loaded = tiny_loaded(arch)
    with torch.no_grad():  # a sharper head: greedy choices far from ties, so float noise cannot flip an argmax
        loaded.model.lm_head.weight.mul_(8.0)
    rng = np.random.default_rng(3)
    vocab = len(loaded.tokenizer)
    prompts = [[loaded.tokenizer.bos_token_id, *rng.integers(4, vocab, size=n).tolist()] for n in (3, 17, 9, 30, 5, 12)]
    gen = TextGenerator.for_loaded(loaded, GenerationConfig(max_new_tokens=10, batch_size=6, stop=[]))
    stops = set(gen.eos_ids) | {gen.pad_id}
    expected = [_greedy_reference(loaded.model, p, 10, stops) for p in prompts]
    assert sum(len(e) for e in expected) >= 30  # the tiny model does not stop at once: the loop is compared
    assert gen.generate_tokens(prompts) == expected
    texts = [loaded.tokenizer.decode(e, skip_special_tokens=True).strip() for e in expected]
    assert gen.generate(prompts) == texts


def test_encode_wraps_plain_and_collaborative_prompts_in_the_chat_template():
    """With a chat template that shows the role and the generation prompt, ``encode`` returns exactly the wrapped
    text split at the context / candidate boundary, plain and with collaborative markers (each marker one virtual
    id; the candidate's pieces without special tokens). Mutations caught (mutmut, llmrec.prompts.template.encode
    and _encode_collab): the role's key or value changed, add_generation_prompt dropped or false, tokenize not
    False, the chat text replaced, the candidate's first piece given special tokens."""
    from llmrec.prompts.template import cf_marker, encode
    from tests.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer("User Liked Target user model")
    tok.chat_template = ("{% for m in messages %}<bos> {{ m['role'] }} {{ m['content'] }} <eos>{% endfor %}"
                         "{% if add_generation_prompt %} model{% endif %}")

    def ids(text, special=False):
        return tok(text, add_special_tokens=special)["input_ids"]

    ctx_ids, cand_ids, text = encode(tok, "Liked: Movie 1", " Target: Movie 2", chat=True)
    assert text == "<bos> user Liked: Movie 1 Target: Movie 2 <eos> model"
    assert (list(ctx_ids), list(cand_ids)) == (ids("<bos> user Liked: Movie 1"), ids(" Target: Movie 2 <eos> model"))

    virtual = {"user": 10_000, "item": 10_001}
    context = "User " + cf_marker("user", "u1") + " Liked: Movie 1"
    candidate = " Target: Movie 2 " + cf_marker("item", "i9")
    ctx_ids, cand_ids, shown = encode(tok, context, candidate, chat=True, collab=lambda kind, key: virtual[kind])
    assert shown == "<bos> user User <user_cf> Liked: Movie 1 Target: Movie 2 <item_cf> <eos> model"
    assert list(ctx_ids) == ids("<bos> user User ") + [10_000] + ids(" Liked: Movie 1")
    assert list(cand_ids) == ids(" Target: Movie 2 ") + [10_001] + ids(" <eos> model")
    # without the chat template: the context opens with the tokenizer's special tokens, the candidate does not
    ctx_ids, cand_ids, shown = encode(tok, context, candidate, chat=False, collab=lambda kind, key: virtual[kind])
    assert shown == "User <user_cf> Liked: Movie 1 Target: Movie 2 <item_cf>"
    assert list(ctx_ids) == ids("User ", True) + [10_000] + ids(" Liked: Movie 1")
    assert list(cand_ids) == ids(" Target: Movie 2 ") + [10_001]


def test_template_files_by_name_or_path_and_their_errors(tmp_path):
    """The shipped templates by name; a template file by path; one line for a missing file (with the system's
    reason), invalid YAML (with the parser's place), a path that is missing or a folder, and an unknown name.
    Mutations caught (mutmut, llmrec.prompts.template): the registry without its name or key, a registered entry
    lost, the OSError reason or the YAML problem left out, the path test on the name or the suffix inverted, the
    folder note's empty alternative changed, the unknown name left out of the message."""
    from llmrec.errors import ConfigError
    from llmrec.prompts.template import TEMPLATES, read_template_yaml, shipped_templates, template_file

    shipped = shipped_templates("llmrec.prompts")
    assert (shipped.what, sorted(shipped)) == ("template", sorted(TEMPLATES))
    assert template_file("tallrec_movie", shipped).name == "tallrec_movie.yaml"
    with pytest.raises(ConfigError, match="missing.yaml: cannot read template: No such file or directory$"):
        read_template_yaml(tmp_path / "missing.yaml", ("name",))
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: cannot read template: invalid YAML: .*line \d"):
        read_template_yaml(tmp_path / "bad.yaml", ("name",))
    with pytest.raises(ConfigError, match="^template file 'nope.yaml' not found$"):
        template_file("nope.yaml", shipped)
    with pytest.raises(ConfigError, match="not found$"):
        template_file(str(tmp_path / "sub" / "nosuffix"), shipped)
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"not found \(a folder\)$"):
        template_file(str(tmp_path / "dir.yaml"), shipped)
    with pytest.raises(ConfigError, match="^template: unknown template 'nope' .*, or give a file path$"):
        template_file("nope", shipped)
