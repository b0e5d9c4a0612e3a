"""LLM-TRSR: batched generation, the summary plans, the summarizers, the summarize transform,
training on the CTR view of candidate lists with selection on a ranking metric."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import PreparedData
from llmrec.data.views import ranking_to_ctr
from llmrec.errors import ConfigError, DataError, LlmrecError
from llmrec.llm.generation import GenerationConfig, TextGenerator, cut_at_stop, length_batches
from llmrec.summarize import (
    SummarizeConfig,
    Summarizer,
    SummaryCache,
    blocks,
    groups,
    hierarchy_levels,
    load_summary_template,
    summarize,
)
from tests.tiny_models import random_prompts, tiny_loaded

QUIET = dict(log=lambda m: None, progress=False)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "cache"))


# ---------------------------------------------------------------------------- generation
@pytest.mark.parametrize("arch", ["llama", "gemma"])
def test_batched_generation_equals_batch_one(arch):
    lm = tiny_loaded(arch)
    gen = TextGenerator.for_loaded(lm, GenerationConfig(max_new_tokens=10, stop=[], batch_size=4))
    prompts = [p.ids for p in random_prompts(7, vocab=len(lm.tokenizer), seed=3)]
    assert len({len(p) for p in prompts}) > 3  # really different lengths: left padding is exercised
    together = gen.generate(prompts)
    alone = [gen.generate([p])[0] for p in prompts]
    assert together == alone
    assert gen.generate_tokens(prompts) == [gen.generate_tokens([p])[0] for p in prompts]
    assert sum(map(bool, together)) >= 5  # text came out (a row may end at once with EOS)


def test_stop_strings_cut_the_text_and_the_budget_holds():
    lm = tiny_loaded("llama")
    prompt = random_prompts(1, vocab=len(lm.tokenizer), seed=5)[0].ids
    free = TextGenerator.for_loaded(lm, GenerationConfig(max_new_tokens=12, stop=[])).generate([prompt])[0]
    words = free.split()
    assert len(lm.tokenizer(free, add_special_tokens=False)["input_ids"]) <= 12
    stop = words[len(words) // 2]
    cut = TextGenerator.for_loaded(lm, GenerationConfig(max_new_tokens=12, stop=[stop])).generate([prompt])[0]
    assert cut == free[: free.index(stop)].strip()
    assert cut_at_stop("a b\nc", ["\n"]) == "a b" and cut_at_stop("  x ", []) == "x"


def test_sampling_is_seeded_and_bad_prompts_fail_clearly():
    lm = tiny_loaded("llama")
    prompts = [p.ids for p in random_prompts(3, vocab=len(lm.tokenizer), seed=1)]
    cfg = GenerationConfig(max_new_tokens=8, stop=[], do_sample=True, temperature=1.0, seed=7)
    assert TextGenerator.for_loaded(lm, cfg).generate(prompts) == TextGenerator.for_loaded(lm, cfg).generate(prompts)
    gen = TextGenerator.for_loaded(lm, GenerationConfig(max_new_tokens=8))
    with pytest.raises(LlmrecError, match="prompt 0 is empty"):
        gen.generate([()])
    with pytest.raises(LlmrecError, match="context window"):
        gen.generate([tuple([5] * 1020)])
    assert length_batches([3, 9, 4, 8], batch_size=2) == [[1, 3], [2, 0]]
    assert length_batches([5, 5, 5], batch_size=8, max_batch_tokens=10) == [[0, 1], [2]]


def test_repetition_controls_stop_loops_and_leave_old_identities_alone():
    lm = tiny_loaded("llama")
    prompts = [p.ids for p in random_prompts(4, vocab=len(lm.tokenizer), seed=2)]

    def repeated_bigrams(seq):
        grams = list(zip(seq, seq[1:]))
        return len(grams) - len(set(grams))

    free = TextGenerator.for_loaded(lm, GenerationConfig(max_new_tokens=24, stop=[])).generate_tokens(prompts)
    assert any(repeated_bigrams(list(p) + t) for p, t in zip(prompts, free))  # a tiny random model loops
    guarded = TextGenerator.for_loaded(lm, GenerationConfig(max_new_tokens=24, stop=[], no_repeat_ngram_size=2))
    new = guarded.generate_tokens(prompts)
    for p, t in zip(prompts, new):  # no bigram of the generated text repeats one already in the sequence
        seq = list(p) + t
        assert all(seq[i:i + 2] != seq[j:j + 2] for j in range(len(p) - 1, len(seq) - 1) for i in range(j))
    penalized = TextGenerator.for_loaded(lm, GenerationConfig(max_new_tokens=24, stop=[], repetition_penalty=3.0))
    assert penalized.generate_tokens(prompts) != free
    # off (the defaults), they are not part of a config's identity: keys made before they existed still hold
    assert "no_repeat_ngram_size" not in GenerationConfig().model_dump()
    assert GenerationConfig(no_repeat_ngram_size=3).model_dump()["no_repeat_ngram_size"] == 3
    before = SummarizeConfig(data="d", out="o").settings()
    assert "repetition_penalty" not in before["generation"]
    assert SummarizeConfig(data="d", out="o", generation={"repetition_penalty": 1.3}).settings() != before
    assert GenerationConfig.model_validate(GenerationConfig(no_repeat_ngram_size=3).model_dump()).no_repeat_ngram_size == 3


# ---------------------------------------------------------------------------- plans
@pytest.mark.parametrize("n_blocks,fan_in,levels", [(1, 5, [1]), (2, 5, [2, 1]), (5, 5, [5, 1]), (6, 5, [6, 2, 1]),
                                                    (25, 5, [25, 5, 1]), (26, 5, [26, 6, 2, 1]), (4, 2, [4, 2, 1]),
                                                    (0, 5, [])])
def test_hierarchy_levels(n_blocks, fan_in, levels):
    assert hierarchy_levels(n_blocks, fan_in) == levels
    if n_blocks:
        assert len(groups(list(range(n_blocks)), fan_in)) == (levels[1] if len(levels) > 1 else 1)


def test_blocks_and_groups():
    assert blocks(list("abcdefghijk"), 5) == [list("abcde"), list("fghij"), ["k"]]
    assert blocks([], 5) == []
    g = groups(list(range(11)), 5)
    assert [len(x) for x in g] == [4, 4, 3] and sum(g, []) == list(range(11))


# ---------------------------------------------------------------------------- summarizers with a recording generator
class Recorder:
    """A generator that answers every prompt with a short tag and records what it was asked."""

    def __init__(self, fail_after: int | None = None):
        self.config = GenerationConfig(max_new_tokens=16)
        self.prompts: list[str] = []
        self.calls = 0
        self.fail_after = fail_after

    def generate(self, prompts, progress=None):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        out = []
        for ids in prompts:
            text = " ".join(map(str, ids))
            self.prompts.append(text)
            out.append(f"S{len(self.prompts)}")
        return out


def _encode(text: str) -> list[int]:
    return [ord(c) for c in text]


def _summarizer(recorder, tmp_path, mode, **kw):
    template = load_summary_template("summary_instruct")
    return Summarizer(recorder, _encode, template, SummaryCache(tmp_path / "c", {"m": 1}), mode=mode, block_size=2,
                      max_prompt_tokens=4000, variables={"domain": "item", "domain_plural": "items"}, **kw)


def _decode(ids_text: str) -> str:
    return "".join(chr(int(t)) for t in ids_text.split())


def test_hierarchical_levels_per_history(tmp_path):
    rec = Recorder()
    s = _summarizer(rec, tmp_path, "hierarchical", fan_in=2)
    histories = [[f"u0-i{i}" for i in range(7)], ["u1-i0"], [f"u2-i{i}" for i in range(4)], []]
    assert s.prompt_count(histories) == (4 + 2 + 1) + 1 + (2 + 1) + 0
    traces = s.run(histories)
    assert [t.levels for t in traces] == [[4, 2, 1], [1], [2, 1], []]
    assert traces[3].summary is None and traces[1].summary == traces[1].steps[0]
    assert all(t.summary == t.steps[-1] for t in traces[:3])
    assert len(rec.prompts) == 11 and rec.calls == 3  # level by level, all users' blocks together
    first_round = [_decode(p) for p in rec.prompts[:7]]
    assert sum("[Items]" in p for p in first_round) == 7


def test_recurrent_sees_every_block_once_in_order(tmp_path):
    rec = Recorder()
    s = _summarizer(rec, tmp_path, "recurrent")
    items = [f"game-{i}" for i in range(5)]
    traces = s.run([items, ["solo"]])
    assert traces[0].levels == [1, 1, 1] and traces[1].levels == [1]
    asked = [_decode(p) for p in rec.prompts]
    user0 = [p for p in asked if "solo" not in p]
    assert len(user0) == 3
    for step, prompt in enumerate(user0):  # block t, and the summary of step t-1
        block = items[2 * step : 2 * step + 2]
        assert all(f". {it}\n" in prompt for it in block)
        others = [it for it in items if it not in block]
        assert not any(f". {it}\n" in prompt for it in others)
        if step:
            assert traces[0].steps[step - 1] in prompt and "[Preference Summary]" in prompt
    assert traces[0].summary == traces[0].steps[-1]


def test_cache_hits_skip_generation_and_a_killed_run_resumes(tmp_path):
    histories = [[f"u{u}-i{i}" for i in range(6)] for u in range(5)]
    full = Recorder()
    expected = [t.summary for t in _summarizer(full, tmp_path / "a", "hierarchical", fan_in=2).run(histories)]

    again = Recorder()
    second = _summarizer(again, tmp_path / "a", "hierarchical", fan_in=2)
    assert [t.summary for t in second.run(histories)] == expected
    assert again.prompts == [] and second.stats.cached == second.stats.prompts

    flaky = Recorder(fail_after=2)  # killed during the third chunk of 4 prompts
    with pytest.raises(KeyboardInterrupt):
        _summarizer(flaky, tmp_path / "b", "hierarchical", fan_in=2, checkpoint_every=4).run(histories)
    journal = (tmp_path / "b" / "c" / "journal.jsonl")
    assert len(journal.read_text().splitlines()) == 8
    with open(journal, "a") as f:
        f.write('{"k": "torn')  # killed mid-write
    rest = Recorder()
    resumed = _summarizer(rest, tmp_path / "b", "hierarchical", fan_in=2, checkpoint_every=4)
    got = resumed.run(histories)
    assert resumed.stats.cached == 8 and len(rest.prompts) == resumed.stats.prompts - 8
    assert [t.levels for t in got] == [[3, 2, 1]] * 5


def test_fan_in_fits_the_budget(tmp_path):
    s = _summarizer(Recorder(), tmp_path, "hierarchical")
    overhead = len(_encode(s.template.prompt("merge", summaries=[], domain="item", domain_plural="items")))
    assert s.fan_in == (4000 - overhead) // (16 + 6)
    tight = Summarizer(Recorder(), _encode, s.template, s.cache, block_size=2, max_prompt_tokens=300,
                       variables=s.variables)
    with pytest.raises(ConfigError, match="max_prompt_tokens=300"):
        tight.run([["x" * 200, "y" * 200]])


def test_templates_are_data_and_bad_ones_fail(tmp_path):
    t = load_summary_template("summary_fewshot")
    assert t.stop == ["\n"] and t.prompt("block", items=["A", "B"], domain_plural="games").endswith("2. B\nSummary:")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nitem: '{{ title }}'\nblock: b\nmerge: m\n")
    with pytest.raises(ConfigError, match="'update' missing"):
        load_summary_template(str(bad))
    with pytest.raises(ConfigError, match="unknown summary template"):
        load_summary_template("nope")
    with pytest.raises(ConfigError, match="item fields are: title"):
        load_summary_template("summary_fewshot").__class__(
            name="y", item="{{ category }}", block="", merge="", update="").item_text({"title": "A"})


# ---------------------------------------------------------------------------- the transform, end to end
@pytest.fixture
def trsr_folder(tmp_path, tiny_ml1m):
    cfg = PrepareConfig(dataset="ml-1m", protocol="trsr", path=str(tiny_ml1m), out=str(tmp_path / "trsr"),
                        trsr={"min_interactions": 8, "max_interactions": 40, "eval_negatives": 5, "n_test": 6,
                              "n_valid": 6})
    return prepare(cfg, log=lambda m: None)[1]


def test_summarize_writes_a_prepared_folder_with_summaries(tmp_path, trsr_folder):
    lm = tiny_loaded("llama")
    out = tmp_path / "hier"
    cfg = SummarizeConfig(data=str(trsr_folder), out=str(out), limits={"train": 5}, item_tokens=6,
                          generation={"max_new_tokens": 6, "stop": []}, fan_in=3)
    path, summary = summarize(cfg, loaded=lm, **QUIET)
    data = PreparedData.load(path)
    source = PreparedData.load(trsr_folder)
    assert data.splits["train"].num_rows == 5 and data.splits["test"].num_rows == source.splits["test"].num_rows
    for name, table in data.splits.items():
        assert table.column_names == [*source.splits[name].column_names, "summary"]
        assert all(isinstance(s, str) for s in table["summary"].to_pylist())
    assert data.config["summary"] == {"mode": "hierarchical", "recent_items": 5, "block_size": 5,
                                      "template": "summary_fewshot"}
    meta = json.loads((path / "summaries.json").read_text())
    assert meta["samples"]["train"] == {"kept": 5, "of": source.splits["train"].num_rows}
    assert 0 < meta["prompts_generated"] + meta["prompts_cached"] <= meta["prompts"]  # a repeated prompt: once
    assert meta["generated_tokens_this_session"] > 0
    detail = pd.read_parquet(path / "summaries.parquet")
    assert len(detail) == sum(t.num_rows for t in data.splits.values())
    from llmrec.data.audit import audit_prepared

    report = audit_prepared(path)  # the leakage audit reads the summarized folder like any other
    assert report["ok"], report
    assert all(lv[-1] == 1 for lv in detail["levels"])

    # a second run (another output) takes every summary from the cache
    _, again = summarize(cfg.model_copy(update={"out": str(tmp_path / "hier2")}), loaded=lm, **QUIET)
    assert again["prompts_generated"] == 0 and again["prompts_cached"] == again["prompts"]
    # the same recipe, another summaries.json (cache counts, seconds): the same fingerprint, so the experiment keys
    # that read it stay (generations differ in their last bits across machines too)
    assert PreparedData.load(tmp_path / "hier2").fingerprint() == data.fingerprint()
    assert json.loads((path / "meta.json").read_text())["recipe"]["made_by"] == "summarize"
    with pytest.raises(DataError, match="already holds summaries"):
        summarize(cfg.model_copy(update={"data": str(path), "out": str(tmp_path / "x")}), loaded=lm, **QUIET)
    with pytest.raises(ConfigError, match="no split 'dev'"):
        summarize(cfg.model_copy(update={"limits": {"dev": 3}, "out": str(tmp_path / "y")}), loaded=lm, **QUIET)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_prompts_show_the_summary_and_the_recent_items(tmp_path, trsr_folder):
    from llmrec.prompts.settings import PromptSettings

    lm = tiny_loaded("llama")
    path, _ = summarize(SummarizeConfig(data=str(trsr_folder), out=str(tmp_path / "s"), mode="recurrent",
                                        generation={"max_new_tokens": 4, "stop": []}, recent_items=3), loaded=lm, **QUIET)
    data = PreparedData.load(path)
    renderer = PromptSettings(max_prompt_tokens=None).renderer(data, lm.tokenizer, "test")
    row = data.splits["test"].slice(0, 1).to_pylist()[0]
    group = renderer.render([row])[0]
    assert len(group) == len(row["candidates"]) and group[0].history_kept == 3
    assert f"Summary of the user's preferences: {row['summary']}" in group[0].text
    ctr = PromptSettings(max_prompt_tokens=None).renderer(data, lm.tokenizer, "train", kind="ctr")
    train_row = ranking_to_ctr(data.splits["train"].slice(0, 1).to_pylist())[0]
    assert train_row["summary"] in ctr.render([train_row])[0][0].text


def test_ctr_view_of_candidate_lists():
    rows = [{"sample_id": 1, "user": "u", "summary": "s", "candidates": ["a", "b", "c"], "labels": [0, 0, 1]}]
    view = ranking_to_ctr(rows, negatives=None)
    assert [(r["item"], r["label"]) for r in view] == [("c", 1), ("a", 0), ("b", 0)]
    assert all(r["summary"] == "s" and r["sample_id"] == 1 and "candidates" not in r for r in view)
    assert len(ranking_to_ctr(rows, negatives=1)) == 2
    with pytest.raises(DataError, match="without a positive"):
        ranking_to_ctr([{**rows[0], "labels": [0, 0, 0]}])


def test_train_on_candidate_lists_selects_on_a_ranking_metric(tmp_path, trsr_folder):
    from llmrec.train import TrainConfig, train

    lm = tiny_loaded("llama")
    cfg = TrainConfig(data=str(trsr_folder), train_samples=8, run_dir=str(tmp_path / "run"),
                      optim={"epochs": 2, "batch_size": 4}, selection={"limit": 4, "metric": "recall@3"},
                      test={"limit": 3}, max_prompt_tokens=None)
    path, result = train(cfg, loaded=lm, **QUIET)
    assert result["train"]["samples"] == 16 and result["train"]["positive_rate"] == 0.5  # one Yes, one No per list
    evals = result["selection"]["evaluations"]
    assert result["selection"]["metric"] == "recall@3" and len(evals) == 3
    assert all({"recall@3", "mrr@10", "ndcg@10"} <= set(e) for e in evals)
    assert {"recall@3", "mrr@10"} <= set(result["metrics"])
    with pytest.raises(ConfigError, match="selection.metric: 'auc' is not a ranking metric"):
        train(cfg.model_copy(update={"selection": cfg.selection.model_copy(update={"metric": "auc"}),
                                     "run_dir": str(tmp_path / "r2")}), loaded=lm, **QUIET)
    assert not (tmp_path / "r2").exists()


def test_summarize_cli_bad_input_is_one_line(tmp_path, trsr_folder):
    from click.testing import CliRunner

    from llmrec.cli import main

    res = CliRunner().invoke(main, ["summarize", str(tmp_path / "nope"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "no such folder" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["summarize", str(trsr_folder), "-o", str(tmp_path / "o"), "--limit", "train"])
    assert res.exit_code == 1 and "expected SPLIT=N" in res.output
    res = CliRunner().invoke(main, ["summarize", str(trsr_folder), "-o", str(tmp_path / "o"), "--mode", "recurrent",
                                    "--limit", "train=4", "--print-config"])
    assert res.exit_code == 0 and "mode: recurrent" in res.output and "train: 4" in res.output
    assert not (tmp_path / "o").exists()


def write_mind(root, n_users: int = 30, n_news: int = 60, seed: int = 0):
    """A small MIND-small folder in the official format (news.tsv + behaviors.tsv, no header)."""
    rng = np.random.default_rng(seed)
    cats = [("sports", "golf"), ("news", "newsworld"), ("foodanddrink", "recipes"), ("travel", "traveltrip")]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "news.tsv", "w", encoding="utf-8") as f:
        for n in range(1, n_news + 1):
            cat, sub = cats[n % len(cats)]
            f.write(f"N{n}\t{cat}\t{sub}\tStory {n} about {cat}\tAbstract {n}.\thttps://assets.msn.com/N{n}\t[]\t[]\n")
    with open(root / "behaviors.tsv", "w", encoding="utf-8") as f:
        for u in range(1, n_users + 1):
            clicks = rng.choice(np.arange(1, n_news + 1), size=int(rng.integers(12, 18)), replace=False)
            history, clicked = clicks[:-1], clicks[-1]
            others = [n for n in rng.choice(np.arange(1, n_news + 1), size=4, replace=False) if n not in clicks]
            impressions = " ".join([f"N{clicked}-1", *(f"N{n}-0" for n in others)])
            f.write(f"{u}\tU{u}\t11/{10 + u % 5}/2019 9:{u % 60:02d}:00 AM\t{' '.join(f'N{n}' for n in history)}\t"
                    f"{impressions}\n")
    return root


def test_mind_format_end_to_end(tmp_path):
    """MIND in the official format: prepare (trsr), summarize with category-aware item texts, rank."""
    from llmrec.evaluate import EvaluateConfig, evaluate

    mind = write_mind(tmp_path / "MINDsmall_train")
    cfg = PrepareConfig(dataset="mind", protocol="trsr", path=str(mind), out=str(tmp_path / "mind-trsr"),
                        trsr={"min_interactions": 10, "max_interactions": 25, "eval_negatives": 5, "n_test": 5,
                              "n_valid": 5})
    folder = prepare(cfg, log=lambda m: None)[1]
    lm = tiny_loaded("llama")
    path, meta = summarize(SummarizeConfig(data=str(folder), out=str(tmp_path / "mind-hier"), limits={"train": 4},
                                           generation={"max_new_tokens": 4}), loaded=lm, **QUIET)
    assert meta["samples"]["train"]["kept"] == 4 and meta["levels"] == {"2": sum(v["kept"] for v in
                                                                                 meta["samples"].values())}
    detail = pd.read_parquet(path / "summaries.parquet")
    assert len(detail) == 4 + 5 + 5
    item_text = load_summary_template("summary_fewshot").item_text  # news items show their category
    assert item_text({"title": "Story 1", "category": "sports"}) == "sports: Story 1"
    assert item_text({"title": "Halo 3"}) == "Halo 3"
    run, result = evaluate(EvaluateConfig(data=str(path), run_dir=str(tmp_path / "run")), loaded=lm, **QUIET)
    assert result["run"]["history_k"] == 5 and result["metrics"]["recall@3"] >= 0
    assert set(result["metrics"]["ci95"]) >= {"recall@3", "recall@5", "recall@10", "mrr@5", "ndcg@10"}


def test_generator_comes_from_the_backend_registry():
    from llmrec.llm import LoadedModel, make_generator

    lm = tiny_loaded("llama")
    assert isinstance(make_generator(lm, GenerationConfig(max_new_tokens=2)), TextGenerator)
    other = LoadedModel(model=None, tokenizer=None, device=None, dtype=None, source="x.gguf", backend="llama.cpp")
    with pytest.raises(LlmrecError, match="cannot generate text .*transformers"):
        make_generator(other)


def test_an_interrupted_summarize_resumes_without_regenerating(tmp_path, trsr_folder):
    lm = tiny_loaded("llama")
    cfg = SummarizeConfig(data=str(trsr_folder), out=str(tmp_path / "s"), limits={"train": 6}, checkpoint_every=5,
                          mode="recurrent")
    killed = Recorder(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        summarize(cfg, loaded=lm, generator=killed, **QUIET)
    assert not (tmp_path / "s").exists()  # nothing half-written
    rest = Recorder()
    _, meta = summarize(cfg, loaded=lm, generator=rest, **QUIET)
    assert meta["prompts_cached"] >= 10 and len(rest.prompts) == meta["prompts_generated"]
    assert meta["prompts_cached"] + meta["prompts_generated"] <= meta["prompts"]
    again = Recorder()
    _, meta2 = summarize(cfg.model_copy(update={"out": str(tmp_path / "s2")}), loaded=lm, generator=again, **QUIET)
    assert again.prompts == [] and meta2["prompts_generated"] == 0
    first = PreparedData.load(tmp_path / "s").splits["test"]["summary"].to_pylist()
    assert first == PreparedData.load(tmp_path / "s2").splits["test"]["summary"].to_pylist()


def test_chat_models_get_the_instruct_template_in_their_chat_template(tmp_path, trsr_folder):
    lm = tiny_loaded("llama")
    lm.tokenizer.chat_template = ("{% for m in messages %}<bos> user {{ m['content'] }} <eos>{% endfor %}"
                                  "{% if add_generation_prompt %} Answer{% endif %}")
    rec = Recorder()
    _, meta = summarize(SummarizeConfig(data=str(trsr_folder), out=str(tmp_path / "c"), limits={"train": 2}),
                        loaded=lm, generator=rec, **QUIET)
    assert meta["template"] == "summary_instruct" and meta["chat"] is True
    first = lm.tokenizer.decode([int(t) for t in rec.prompts[0].split()])
    assert first.startswith("<bos> user") and first.endswith("<eos> Answer")
    with pytest.raises(ConfigError, match="no chat template"):
        summarize(SummarizeConfig(data=str(trsr_folder), out=str(tmp_path / "d"), chat="on"), loaded=tiny_loaded(),
                  **QUIET)


def test_limits_keep_the_rows_training_and_evaluation_draw(trsr_folder):
    """A summarized subset holds the users `train_samples` trains on and `limit` tests on (same seed)."""
    from llmrec.data.sampling import sample_indices, subset_rows
    from llmrec.summarize.transform import kept_rows

    source = PreparedData.load(trsr_folder)
    cfg = SummarizeConfig(data=str(trsr_folder), out="unused", limits={"train": 5, "test": 4}, seed=3)
    kept = kept_rows(source, cfg)
    assert kept["train"].tolist() == sample_indices(source.splits["train"].num_rows, 5, 3).tolist()
    assert kept["test"].tolist() == subset_rows(source.splits["test"].num_rows, 4, 3)
    assert kept["valid"].tolist() == list(range(source.splits["valid"].num_rows))


def test_a_slow_summarize_journals_by_time_so_a_kill_loses_little(tmp_path):
    """Found in review: summaries were journaled every 64 prompts only. With ``checkpoint_seconds`` a generator at 20
    prompts/s, killed mid-call after 1.6 s, has journaled all but the last ~0.5 s."""
    import time

    per_prompt, kill_after, seconds = 0.05, 1.6, 0.5

    class Slow(Recorder):
        def generate(self, prompts, progress=None):
            out = []
            for p in prompts:
                if time.perf_counter() - started > kill_after:
                    raise KeyboardInterrupt
                time.sleep(per_prompt)
                out.extend(Recorder.generate(self, [p]))
            return out

    histories = [[f"u{u}-i{i}" for i in range(6)] for u in range(40)]  # 120 block prompts in the first round
    slow = Slow()
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        _summarizer(slow, tmp_path, "hierarchical", fan_in=2, checkpoint_every=64, checkpoint_seconds=seconds
                    ).run(histories)
    journaled = len((tmp_path / "c" / "journal.jsonl").read_text().splitlines())
    assert journaled >= 8, journaled  # by count alone (64) it would be 0
    assert (len(slow.prompts) - journaled) * per_prompt <= 2 * seconds, (len(slow.prompts), journaled)
