"""Collaborative tokens (CoLLM-style): markers, the embeddings the model receives, prefix reuse, the stages, the
saved run, a planted task where only the collaborative embedding carries the signal, and bad inputs.

The planted task: every movie has the same title ("Film") and genre, so neither the history lists nor the target's
text say anything about it; each movie is good (rated 4-5 by everyone) or bad (rated 1-2), so the label is the
target item's. A matrix factorization trained on the training split learns it in its item embeddings; a text-only
LoRA cannot see it (each history lists as many good as bad titles on average, all called "Film"). The collaborative
token ``{{ item_cf }}`` stands last in the prompt, right before the answer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from llmrec.baselines.config import BaselineConfig
from llmrec.baselines.run import run_baseline
from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.errors import ConfigError, DataError, LlmrecError
from llmrec.evaluate import EvaluateConfig, evaluate
from llmrec.llm import AnswerTokens, EncodedPrompt, ScoringConfig, YesNoScorer
from llmrec.llm.collab import COLLAB_FILE, TABLES_FILE, CollabTables, collab_module, install_collab
from llmrec.prompts.template import PromptTemplate, cf_marker
from llmrec.train import TrainConfig, train
from tests.conftest import write_ml1m_zip
from tests.tiny_models import tiny_llama, tiny_loaded, tiny_tokenizer

QUIET = dict(progress=False, log=lambda m: None)
TEMPLATE = """\
name: collab_short
description: liked and disliked history titles, the user's token, then the target's token last
protocols: [tallrec]
answer: {"yes": "Yes", "no": "No"}
context: |
  User {{ user_cf }} Liked: {{ history | selectattr("liked") | map(attribute="title") | join(", ") }}
  Disliked: {{ history | rejectattr("liked") | map(attribute="title") | join(", ") }}
candidate: |
  Target movie: {{ target.title }} {{ item_cf }}
"""
TEXT_TEMPLATE = """\
name: text_short
description: the same prompt without collaborative tokens
protocols: [tallrec]
answer: {"yes": "Yes", "no": "No"}
context: |
  User Liked: {{ history | selectattr("liked") | map(attribute="title") | join(", ") }}
  Disliked: {{ history | rejectattr("liked") | map(attribute="title") | join(", ") }}
candidate: |
  Target movie: {{ target.title }}
"""
MIN_GAIN = 0.2  # CoLLM AUC over the text-only LoRA's on the planted task (measured in the test's docstring)


def _tables(n_users=3, n_items=4, dim=6, seed=0) -> CollabTables:
    rng = np.random.default_rng(seed)
    return CollabTables([f"u{i}" for i in range(n_users)], [f"i{i}" for i in range(n_items)],
                        rng.normal(size=(n_users + 2, dim)).astype(np.float32),
                        rng.normal(size=(n_items + 2, dim)).astype(np.float32), {"run": "test"})


def _template(text: str, tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------- unit level
def test_markers_become_one_virtual_token_each_and_the_model_receives_the_mapped_vectors():
    loaded = tiny_loaded("gemma3")
    tables = _tables()
    ids = install_collab(loaded.model, tables, hidden=16)
    tpl = PromptTemplate("t", "Liked {{ user_cf }} stars\n", "Movie {{ item_cf }} Yes or No",
                         {"yes": "Yes", "no": "No"})
    assert tpl.collab_fields == ("user_cf", "item_cf")
    variables = {"user_cf": cf_marker("user", "u1"), "item_cf": cf_marker("item", "i2")}
    prompt = tpl.render(loaded.tokenizer, variables, [], collab=ids)
    full = list(prompt.context_ids + prompt.candidate_ids)
    virtual = [p for p, t in enumerate(full) if t >= ids.base]
    assert [full[p] for p in virtual] == [ids("user", "u1"), ids("item", "i2")]
    assert "<user_cf>" in prompt.text and "<item_cf>" in prompt.text
    # the plain text around the markers tokenizes as without them
    plain = tpl.render(loaded.tokenizer, {"user_cf": "", "item_cf": ""}, [], collab=ids)
    assert [t for t in full if t < ids.base] == list(plain.context_ids + plain.candidate_ids)

    seen = {}

    def capture(module, args, kwargs):  # what the first decoder layer receives
        seen["h"] = kwargs.get("hidden_states", args[0] if args else None)

    handle = loaded.model.model.layers[0].register_forward_pre_hook(capture, with_kwargs=True)
    with torch.no_grad():
        loaded.model(input_ids=torch.tensor([full]))
    handle.remove()
    received = seen["h"][0]
    emb = collab_module(loaded.model)
    with torch.no_grad():
        expected_user = emb.mapped(torch.tensor([ids("user", "u1") - ids.base]))[0]
        expected_item = emb.mapped(torch.tensor([ids("item", "i2") - ids.base]))[0]
        real = emb.base_module(torch.tensor([full[0]]))[0]
    torch.testing.assert_close(received[virtual[0]], expected_user)
    torch.testing.assert_close(received[virtual[1]], expected_item)
    torch.testing.assert_close(received[0], real)  # real ids: the model's own (scaled) embeddings


def test_scores_with_prefix_reuse_equal_scores_without():
    loaded = tiny_loaded("gemma3")
    ids = install_collab(loaded.model, _tables(), hidden=16)
    tok = loaded.tokenizer
    header = "Below is an instruction that describes a task , paired with an input . Write a response"
    tpl = PromptTemplate("t", header + " User {{ user_cf }} Liked : Movie\n", "Target {{ item_cf }} Movie",
                         {"yes": "Yes", "no": "No"})
    prompts = []
    for u in ("u0", "u1", "u2", "nobody"):
        for i in ("i0", "i1", "i3", "unknown"):
            r = tpl.render(tok, {"user_cf": cf_marker("user", u), "item_cf": cf_marker("item", i)}, [], collab=ids)
            prompts.append(EncodedPrompt(r.context_ids, r.candidate_ids))
    answer = AnswerTokens.from_words(tok, "Yes", "No")
    reused = YesNoScorer(loaded.model, answer, ScoringConfig(prefix_reuse="auto")).score(prompts)
    alone = YesNoScorer(loaded.model, answer, ScoringConfig(prefix_reuse="off", batch_size=1)).score(prompts)
    np.testing.assert_allclose(reused, alone, atol=1e-5)
    assert len(set(np.round(reused, 6))) > 4  # the tokens matter: different users / items, different scores
    # a shared header before the first collaborative token: its prefix ends there
    first = min(p for p, t in enumerate(prompts[0].ids) if t >= ids.base)
    assert prompts[0].ids[:first] == prompts[5].ids[:first] and prompts[0].ids[first] != prompts[5].ids[first]


def test_template_markers_and_model_must_agree():
    tpl = PromptTemplate("plain", "Liked\n", "Movie", {"yes": "Yes", "no": "No"})
    with pytest.raises(ConfigError, match="no {{ user_cf }} / {{ item_cf }} marker"):
        tpl.check_collab(True)
    tpl.check_collab(False)
    marked = PromptTemplate("m", "{{ user_cf }}\n", "Movie", {"yes": "Yes", "no": "No"})
    with pytest.raises(ConfigError, match="places collaborative tokens"):
        marked.render(tiny_tokenizer(), {"user_cf": cf_marker("user", "1")}, [])


# ---------------------------------------------------------------------- end to end
def planted_ratings(seed: int = 0, n_users: int = 40, n_items: int = 40, per_user: int = 25):
    """Ratings of the planted task (module docstring): item m is good when m is even."""
    rng = np.random.default_rng(seed)
    movies = [(m, "Film", "Drama") for m in range(1, n_items + 1)]
    rows = []
    for u in range(1, n_users + 1):
        for t, m in enumerate(rng.choice(np.arange(1, n_items + 1), size=per_user, replace=False)):
            good = m % 2 == 0
            rows.append((u, int(m), int(rng.integers(4, 6)) if good else int(rng.integers(1, 3)),
                         1_000_000 + 1000 * t + u))
    return rows, movies


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The planted folder, a model folder, an MF run on its training split, and the text-only stage-1 run."""
    tmp = tmp_path_factory.mktemp("collab")
    rows, movies = planted_ratings()
    zip_path = write_ml1m_zip(tmp / "ml-1m.zip", rows, movies)
    data = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(zip_path), out=str(tmp / "data"),
                                 tallrec={"history_len": 3}), log=lambda m: None)[1]
    tok = tiny_tokenizer("Film User Target movie: Liked: Disliked:")
    model = tiny_llama(vocab=len(tok))
    model.config.max_position_embeddings = 1024
    model.save_pretrained(tmp / "model")
    tok.save_pretrained(tmp / "model")
    mf, _ = run_baseline(BaselineConfig(model="mf", data=str(data), run_dir=str(tmp / "mf"), seed=0), log=lambda m: None)
    common = dict(data=str(data), train_samples=160, seed=0, model={"name": str(tmp / "model"), "device": "cpu"},
                  selection={"limit": 60}, test={"limit": 200})
    text_tpl = _template(TEXT_TEMPLATE, tmp, "text")
    stage1, text_result = train(TrainConfig(**common, template=text_tpl, run_dir=str(tmp / "stage1"),
                                            optim={"epochs": 2, "learning_rate": 1e-2}), **QUIET)
    return {"tmp": tmp, "data": data, "mf": mf, "common": common, "stage1": stage1, "text": text_result,
            "template": _template(TEMPLATE, tmp, "collab")}


@pytest.fixture(scope="module")
def stage2(planted):
    """Stage 2: the mapper trained with the stage-1 LoRA frozen."""
    cfg = TrainConfig(**planted["common"], template=planted["template"], run_dir=str(planted["tmp"] / "stage2"),
                      optim={"epochs": 3, "learning_rate": 1e-2},
                      collab={"run": str(planted["mf"]), "mapper": {"hidden": 32}, "stage": "mapper",
                              "adapter_from": str(planted["stage1"])})
    run, result = train(cfg, **QUIET)
    return cfg, run, result


def _lora_state(adapter: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(adapter / "adapter_model.safetensors"))


def test_stage2_learns_the_planted_signal_with_lora_frozen_and_evaluate_reproduces_it(planted, stage2):
    """Stage 2 (mapper only, LoRA from the text run) beats the text-only LoRA run by MIN_GAIN AUC; its LoRA weights
    are the stage-1 run's to the bit; ``llmrec evaluate`` of the saved run gives the run's test predictions."""
    tmp, common = planted["tmp"], planted["common"]
    cfg, run, result = stage2
    adapter = run / "adapter"
    assert (adapter / COLLAB_FILE).is_file() and (adapter / TABLES_FILE).is_file()
    before, after = _lora_state(planted["stage1"] / "adapter"), _lora_state(adapter)
    lora_keys = [k for k in before if "lora_" in k]
    assert lora_keys and all(torch.equal(before[k], after[k]) for k in lora_keys)
    assert any("collab_mapper" in k for k in after)  # the mapper is saved with the adapter
    checkpoints = sorted((run / "checkpoints").glob("checkpoint-*"))  # and with every checkpoint (resume)
    assert checkpoints and any("collab_mapper" in k for k in _lora_state(checkpoints[-1]))

    text_auc, collab_auc = planted["text"]["metrics"]["auc"], result["metrics"]["auc"]
    assert collab_auc >= text_auc + MIN_GAIN, (text_auc, collab_auc)

    again, reloaded = evaluate(EvaluateConfig(data=str(planted["data"]), limit=200, template=planted["template"],
                                              model=common["model"], adapter=str(run), run_dir=str(tmp / "again")),
                               **QUIET)
    a = pd.read_parquet(run / "test" / "predictions.parquet").set_index("sample_id")["score"]
    b = pd.read_parquet(again / "predictions.parquet").set_index("sample_id")["score"]
    np.testing.assert_allclose(a.sort_index().to_numpy(), b.sort_index().to_numpy(), atol=1e-6)

    # stage 3: joint tuning from the stage-2 run starts from its mapper and LoRA (no selection: the last weights),
    # moves the LoRA weights and keeps the signal
    cfg3 = cfg.model_copy(update={"run_dir": str(tmp / "stage3"), "optim": cfg.optim.model_copy(update={"epochs": 1}),
                                  "selection": cfg.selection.model_copy(update={"enabled": False}),
                                  "collab": cfg.collab.model_copy(update={"stage": "joint", "adapter_from": str(run)})})
    run3, result3 = train(cfg3, **QUIET)
    joint = _lora_state(run3 / "adapter")
    assert any(not torch.equal(after[k], joint[k]) for k in lora_keys)
    assert result3["metrics"]["auc"] >= text_auc + MIN_GAIN, (text_auc, result3["metrics"]["auc"])


def test_bad_inputs_are_one_line(planted, stage2, tmp_path):
    common = planted["common"]
    base = dict(**common, run_dir=str(tmp_path / "run"))
    # the collaborative model was trained on another prepared folder
    rows, movies = planted_ratings(seed=1)
    other = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(write_ml1m_zip(
        tmp_path / "o.zip", rows, movies)), out=str(tmp_path / "other"), tallrec={"history_len": 3}),
        log=lambda m: None)[1]
    mf_other, _ = run_baseline(BaselineConfig(model="mf", data=str(other), run_dir=str(tmp_path / "mf-other"),
                                              train={"epochs": 1}), log=lambda m: None)
    with pytest.raises(ConfigError, match="must be trained on this prepared folder's training split"):
        train(TrainConfig(**base, template=planted["template"], collab={"run": str(mf_other)}), **QUIET)
    # a template without markers
    with pytest.raises(ConfigError, match="has no {{ user_cf }}"):
        train(TrainConfig(**base, template=_template(TEXT_TEMPLATE, tmp_path, "t"), collab={"run": str(planted["mf"])}),
              **QUIET)
    # a marked template without collab
    with pytest.raises(ConfigError, match="places collaborative tokens"):
        train(TrainConfig(**base, template=planted["template"]), **QUIET)
    # not a baseline run; a baseline without embeddings
    with pytest.raises(DataError, match="not a finished llmrec baseline run"):
        train(TrainConfig(**base, template=planted["template"], collab={"run": str(tmp_path)}), **QUIET)
    # an adapter whose tables went missing
    broken = tmp_path / "broken"
    shutil.copytree(stage2[1] / "adapter", broken)
    (broken / TABLES_FILE).unlink()
    with pytest.raises(LlmrecError, match="no collab_tables.safetensors"):
        evaluate(EvaluateConfig(data=str(planted["data"]), limit=5, template=planted["template"], model=common["model"],
                                adapter=str(broken), run_dir=str(tmp_path / "e")), **QUIET)
    assert not (tmp_path / "run").exists()


def test_tables_come_from_mf_and_din_runs_and_not_from_a_model_without_embeddings(tallrec_data, tmp_path):
    """The user / item tables of a baseline run, in its vocabularies' layout, with the run's data fingerprint; a
    model without id embeddings (logreg) is refused with one line."""
    pytest.importorskip("fuxictr")
    from llmrec.data.prepared import PreparedData

    fingerprint = PreparedData.load(tallrec_data).fingerprint()
    for model in ("mf", "din"):
        run, _ = run_baseline(BaselineConfig(model=model, data=str(tallrec_data), run_dir=str(tmp_path / model),
                                             train={"epochs": 1}), log=lambda m: None)
        tables = CollabTables.from_baseline_run(run)
        features = json.loads((run / "model" / "features.json").read_text())
        assert tables.users == features["users"] and tables.items == features["items"]
        assert tables.user.shape == (len(tables.users) + 2, 16) and tables.item.shape == (len(tables.items) + 2, 16)
        assert tables.source["data_fingerprint"] == fingerprint and tables.source["split"] == "train"
    run, _ = run_baseline(BaselineConfig(model="logreg", data=str(tallrec_data), run_dir=str(tmp_path / "lr"),
                                         train={"epochs": 1}), log=lambda m: None)
    with pytest.raises(DataError, match="has no user embedding table"):
        CollabTables.from_baseline_run(run)


def test_stage2_resumes_after_an_interruption_with_the_same_mapper_and_scores(planted, tmp_path):
    """A stage-2 run killed after its first checkpoint resumes from it: the saved mapper and LoRA weights and the
    test scores equal those of the uninterrupted run (the mapper travels in the checkpoint as a peft
    ``modules_to_save`` module, and the frozen LoRA still comes from the stage-1 run)."""
    from transformers import TrainerCallback

    def config(name):
        return TrainConfig(**{**planted["common"], "train_samples": 48, "selection": {"limit": 30, "every_steps": 4},
                              "test": {"limit": 40}},
                           template=planted["template"], run_dir=str(tmp_path / name),
                           optim={"epochs": 2, "learning_rate": 1e-2, "batch_size": 8, "save_steps": 4},
                           collab={"run": str(planted["mf"]), "mapper": {"hidden": 16}, "stage": "mapper",
                                   "adapter_from": str(planted["stage1"])})

    straight, straight_result = train(config("straight"), **QUIET)

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 6:
                raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        train(config("resumed"), callbacks=[Crash()], **QUIET)
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    resumed, result = train(config("resumed"), **QUIET)
    assert result["train"]["resumed_from"].endswith("checkpoint-4")
    a, b = _lora_state(straight / "adapter"), _lora_state(resumed / "adapter")
    assert a.keys() == b.keys() and any("collab_mapper" in k for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)
    scores = [pd.read_parquet(r / "test" / "predictions.parquet").sort_values("sample_id")["score"].to_numpy()
              for r in (straight, resumed)]
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-5)
    assert result["metrics"]["auc"] == pytest.approx(straight_result["metrics"]["auc"], abs=1e-6)
