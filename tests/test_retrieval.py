"""SUBR (ReLLa's semantic user behaviour retrieval): encoding cache, the two SUBR paths, the transform."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from llmrec.data.audit import audit_prepared
from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import READS, PreparedData
from llmrec.retrieval import EncoderSettings, RetrievalConfig, encode_items, retrieve, subr_fast, subr_reference
from llmrec.retrieval.encode import project
from llmrec.retrieval.transform import HISTORY_COLUMNS, SAMPLE_COLUMNS
from tests.conftest import random_ratings, write_ml1m_zip
from tests.test_bad_inputs import assert_clean_failure, run
from tests.tiny_models import tiny_loaded


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------ the two SUBR paths


def _random_problem(seed: int, n_users: int = 40, n_items: int = 50, dim: int = 6, k: int = 4):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 60, n_users)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    seq_rows = rng.integers(0, n_items, int(lengths.sum()))
    users = np.repeat(np.arange(n_users), lengths - 1)
    ends = np.concatenate([np.arange(1, n) for n in lengths])
    vectors, _ = project(rng.normal(size=(n_items, dim)), None)
    return seq_rows, starts, users, ends, vectors, k


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dense_max_items", [0, 10_000])  # per-user blocks, and the items x items matrix
@pytest.mark.parametrize("block_entries", [1024, 1 << 15])
# the matrix in one pass, or one target item's row per pass (each user's samples split among the passes)
@pytest.mark.parametrize("dense_pass_mib", [0, 32])
def test_fast_subr_equals_the_straightforward_one(seed, dense_max_items, block_entries, dense_pass_mib):
    problem = _random_problem(seed)
    ref = subr_reference(*problem)
    for threads in (1, 2):
        fast = subr_fast(*problem, dense_max_items=dense_max_items, block_entries=block_entries, threads=threads,
                         dense_pass_mib=dense_pass_mib)
        assert fast.equals(ref)


def test_the_dense_passes_hold_at_most_their_budget(monkeypatch):
    """With ``dense_pass_mib``, the items x items similarities are built a slice of target rows at a time, each slice
    within the budget, together covering every target row that has a sample, and the result is unchanged.

    Mutation: one pass of the whole matrix, or a slice one row short: the sizes or the result differ.
    """
    import llmrec.retrieval.subr as subr

    rng = np.random.default_rng(5)
    n_items, lengths = 3000, rng.integers(15, 40, 30)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    seq_rows = rng.integers(0, n_items, int(lengths.sum()))
    users = np.repeat(np.arange(len(lengths)), lengths - 1)
    ends = np.concatenate([np.arange(1, n) for n in lengths])
    vectors, _ = project(rng.normal(size=(n_items, 8)), None)
    built = []
    real = subr._dense_similarities
    monkeypatch.setattr(subr, "_dense_similarities", lambda q, first=0, stop=None: built.append(
        (first, stop)) or real(q, first, stop))
    got = subr_fast(seq_rows, starts, users, ends, vectors, 4, dense_pass_mib=1)  # 87 of the 3,000 rows at a time
    rows_per_pass = (1 << 20) // (4 * n_items)
    assert built and all(stop - first <= rows_per_pass for first, stop in built)
    assert all(first % rows_per_pass == 0 for first, _ in built)
    targets = seq_rows[starts[users] + ends][ends > 4]
    assert {t // rows_per_pass for t in targets} == {first // rows_per_pass for first, _ in built}
    assert got.equals(subr_reference(seq_rows, starts, users, ends, vectors, 4))


def test_subr_picks_the_most_similar_items_in_chronological_order():
    vectors = np.array([[0.6, 0.8], [0.8, 0.6], [1, 0], [0, 1], [0.6, -0.8], [-1, 0]], dtype=np.float32)
    seq = np.array([3, 0, 5, 1, 4, 2])  # the target (position 5) is item 2; similarities .0 .6 -1 .8 .6
    for fn in (subr_fast, subr_reference):
        got = fn(seq, np.array([0]), np.array([0]), np.array([5]), vectors, 3)
        assert got.positions.tolist() == [1, 3, 4]  # items 0, 1, 4, oldest first
        np.testing.assert_allclose(got.similarity, [0.6, 0.8, 0.6], atol=1e-3)
        # items 0 and 4 tie at .6: with K=2 the more recent one is kept
        got = fn(seq, np.array([0]), np.array([0]), np.array([5]), vectors, 2)
        assert got.positions.tolist() == [3, 4]


def test_k_larger_than_the_history_keeps_everything():
    problem = list(_random_problem(3, k=100))
    got = subr_fast(*problem)
    ends = problem[3]
    assert np.diff(got.offsets).tolist() == ends.tolist()
    first = got.positions[got.offsets[0] : got.offsets[1]]
    assert first.tolist() == list(range(ends[0]))


# ------------------------------------------------------------------ the transform on a toy catalogue


def _toy_rella(tmp_path, min_history: int = 5):
    zip_path = write_ml1m_zip(tmp_path / "ml-1m.zip", random_ratings(12, 50, (3, 40), seed=4))
    out = tmp_path / f"rella-{min_history}"
    prepare(PrepareConfig(dataset="ml-1m", protocol="rella", path=str(zip_path), out=str(out),
                          rella={"min_history": min_history}), log=lambda m: None)
    return out


def _angle(item: str) -> float:
    i = int(item)
    return (7.0 * i + 0.37 * i * i) % 360  # irregular gaps: no two items tie in similarity to a third


def _vector_file(tmp_path, items, drop: str | None = None):
    """Item i points at angle(i) degrees: the similarity of two items is known from their ids."""
    ids = [i for i in items if i != drop]
    angles = np.deg2rad([_angle(i) for i in ids])
    path = tmp_path / "vectors.parquet"
    pd.DataFrame({"item": ids, "vector": [[float(np.cos(a)), float(np.sin(a))] for a in angles]}).to_parquet(path)
    return path


def _toy_retrieved(tmp_path, k: int):
    """A toy ReLLa folder and its SUBR version (vectors from :func:`_vector_file`)."""
    data = _toy_rella(tmp_path)
    vec = _vector_file(tmp_path, PreparedData.load(data).items["item"].tolist())
    path, _ = retrieve(RetrievalConfig(data=str(data), out=str(tmp_path / "subr"), k=k,
                                       encoder=EncoderSettings(kind="file", path=str(vec), pca_dim=None)),
                       log=lambda m: None, progress=False)
    return data, path


def _expected(prepared: PreparedData, split: str, k: int) -> list[list[str]]:
    """By hand: the k earlier items closest in angle (ties: the more recent), in chronological order."""
    seqs = {r["user"]: r["items"] for r in prepared.sequences.to_pylist()}
    out = []
    for row in prepared.splits[split].to_pylist():
        earlier = seqs[row["user"]][: row["history_end"]]
        target = _angle(row["item"])
        gap = [1 - np.cos(np.deg2rad(target - _angle(i))) for i in earlier]
        order = sorted(range(len(earlier)), key=lambda p: (round(gap[p], 9), -p))[:k]
        out.append([earlier[p] for p in sorted(order)])
    return out


@pytest.mark.parametrize("min_history", [5, 1])  # 1: samples with histories shorter than 5
def test_retrieve_writes_the_k_most_similar_items_per_sample(tmp_path, min_history):
    data = _toy_rella(tmp_path, min_history)
    src = PreparedData.load(data)
    vec = _vector_file(tmp_path, src.items["item"].tolist())
    out = tmp_path / "subr"
    cfg = RetrievalConfig(data=str(data), out=str(out), k=6, encoder=EncoderSettings(kind="file", path=str(vec),
                                                                                     pca_dim=None))
    path, summary = retrieve(cfg, log=lambda m: None, progress=False)
    got = PreparedData.load(path)
    for split in ("train", "valid", "test"):
        a, b = src.splits[split], got.splits[split]
        assert a["sample_id"].to_pylist() == b["sample_id"].to_pylist()
        assert a["label"].to_pylist() == b["label"].to_pylist()
        assert b["history_items"].to_pylist() == _expected(src, split, 6)
        assert [len(h) for h in b["history_items"].to_pylist()] == [min(e, 6) for e in a["history_end"].to_pylist()]
    assert summary["samples_with_fewer_than_k"] > 0
    assert got.config["retrieval"]["k"] == 6
    provenance = json.loads((path / "retrieval.json").read_text())
    assert provenance["source"]["fingerprint"] == src.fingerprint()
    assert audit_prepared(path)["ok"]


def test_retrieve_reads_each_file_once_and_only_the_columns_it_needs(tmp_path):
    data = _toy_rella(tmp_path)
    vec = _vector_file(tmp_path, PreparedData.load(data).items["item"].tolist())
    READS.clear()
    retrieve(RetrievalConfig(data=str(data), out=str(tmp_path / "subr"), k=3,
                             encoder=EncoderSettings(kind="file", path=str(vec), pca_dim=None)),
             log=lambda m: None, progress=False)
    reads = [(Path(p).name, cols) for p, cols in READS.tables if Path(p).parent == data]
    for split in ("train", "valid", "test"):  # SUBR's columns, then all but the old history (replaced) to write it
        kept = tuple(c for c in pq.read_schema(data / f"{split}.parquet").names if c not in HISTORY_COLUMNS)
        assert "history_items" not in kept and "sample_id" in kept
        assert [cols for name, cols in reads if name == f"{split}.parquet"] == [tuple(SAMPLE_COLUMNS), kept]
    assert sorted(name for name, cols in reads if cols is None) == ["items.parquet", "sequences.parquet",
                                                                    "users.parquet"]


def test_a_retrieved_folder_is_fingerprinted_by_its_recipe_not_its_last_bits(tmp_path):
    """An LLM's encodings differ in their last bits from machine to machine, so the SUBR folder's bytes can too:
    its fingerprint (part of every experiment key that reads it) is the recipe, which is the same everywhere."""
    data, path = _toy_retrieved(tmp_path, k=3)
    before = PreparedData.load(path).fingerprint()
    table = pq.read_table(path / "test.parquet").to_pandas()
    table.at[0, "history_items"] = table.at[0, "history_items"][::-1]  # other bytes, as another machine may write
    table.to_parquet(path / "test.parquet")
    assert PreparedData.load(path).fingerprint() == before
    meta = json.loads((path / "meta.json").read_text())
    assert meta["recipe"]["k"] == 3 and meta["recipe"]["source"] == PreparedData.load(data).fingerprint()
    assert meta["recipe"]["encoder"]["kind"] == "file"  # a vector file: its SHA-256 is in the recipe
    vec = _vector_file(tmp_path, PreparedData.load(data).items["item"].tolist())
    other, _ = retrieve(RetrievalConfig(data=str(data), out=str(tmp_path / "subr4"), k=4,
                                        encoder=EncoderSettings(kind="file", path=str(vec), pca_dim=None)),
                        log=lambda m: None, progress=False)
    assert PreparedData.load(other).fingerprint() != before  # another K: another recipe


def test_audit_catches_a_retrieved_history_that_is_not_in_the_chronology(tmp_path):
    _, path = _toy_retrieved(tmp_path, k=3)
    table = pq.read_table(path / "test.parquet").to_pandas()
    table.at[0, "history_positions"] = table.at[0, "history_positions"][::-1]  # not chronological any more
    table.to_parquet(path / "test.parquet")
    report = audit_prepared(path)
    assert not report["ok"]


def test_items_without_a_vector_fail_with_a_clear_error(tmp_path):
    data = _toy_rella(tmp_path)
    items = PreparedData.load(data).items["item"].tolist()
    seq = PreparedData.load(data).sequences.to_pylist()
    drop = seq[0]["items"][0]
    vec = _vector_file(tmp_path, items, drop=drop)
    code, out = run("retrieve", str(data), "-o", str(tmp_path / "subr"), "--encoder", "file",
                    "--set", f"encoder.path={vec}", "--pca-dim", "0")
    assert_clean_failure(code, out, "without a vector", repr(drop))
    assert not (tmp_path / "subr").exists()


def test_retrieve_refuses_bad_inputs(tmp_path):
    data = _toy_rella(tmp_path)
    code, out = run("retrieve", str(data), "-o", str(data), "--encoder", "file", "--set", "encoder.path=x.parquet")
    assert_clean_failure(code, out, "holds the input")  # the input folder is never replaced
    vec = _vector_file(tmp_path, PreparedData.load(data).items["item"].tolist())
    path, _ = retrieve(RetrievalConfig(data=str(data), out=str(tmp_path / "subr"), k=3,
                                       encoder=EncoderSettings(kind="file", path=str(vec))),
                       log=lambda m: None, progress=False)
    code, out = run("retrieve", str(path), "-o", str(tmp_path / "again"), "--encoder", "file",
                    "--set", f"encoder.path={vec}")
    assert_clean_failure(code, out, "already holds retrieved histories")
    code, out = run("retrieve", str(tmp_path / "nothing"), "-o", str(tmp_path / "o2"))
    assert_clean_failure(code, out, "no such folder")


# ------------------------------------------------------------------ the item encoder and its cache


def _items(n: int = 70) -> pd.DataFrame:
    return pd.DataFrame({"item": [str(i) for i in range(n)], "title": [f"Movie {i % 9} stars" for i in range(n)],
                         "genres": ["Comedy" if i % 2 else "Drama" for i in range(n)]})


def test_item_encoding_is_cached_and_invalidated_by_text_and_model(tmp_path, tiny_model_folder):
    settings = EncoderSettings(model={"name": str(tiny_model_folder), "device": "cpu"}, chunk_items=16, batch_size=8)
    first = encode_items(_items(), settings, progress=False, log=lambda m: None)
    assert first.vectors.shape == (70, 32) and not first.info["cached"]
    t0 = time.perf_counter()
    again = encode_items(_items(), settings, progress=False, log=lambda m: None)
    assert again.info["cached"] and time.perf_counter() - t0 < 2.0
    np.testing.assert_array_equal(first.vectors, again.vectors)

    changed = _items()
    changed.loc[3, "title"] = "Another title"
    other = encode_items(changed, settings, progress=False, log=lambda m: None)
    assert not other.info["cached"]
    assert not np.allclose(other.vectors[3], first.vectors[3])
    np.testing.assert_allclose(other.vectors[4], first.vectors[4], atol=1e-5)

    new_weights = tiny_loaded("llama", seed=7)  # other weights saved in the same folder
    new_weights.model.save_pretrained(tiny_model_folder)
    retrained = encode_items(_items(), settings, progress=False, log=lambda m: None)
    assert not retrained.info["cached"]
    assert not np.allclose(retrained.vectors, first.vectors)


def test_batched_encoding_equals_one_at_a_time(tmp_path, tiny_model_folder):
    loaded = tiny_loaded("llama")
    batched = encode_items(_items(20), EncoderSettings(batch_size=8), loaded=loaded, progress=False)
    single = encode_items(_items(20), EncoderSettings(batch_size=1, chunk_items=1), loaded=loaded, progress=False)
    np.testing.assert_allclose(batched.vectors, single.vectors, atol=1e-5)


def test_item_encoding_resumes_after_an_interruption(tmp_path, monkeypatch):
    import llmrec.llm.embed as embed

    loaded = tiny_loaded("llama")
    settings = EncoderSettings(chunk_items=16, batch_size=8)
    real = embed.mean_pooled
    calls = []

    def dies_on_the_third_chunk(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(embed, "mean_pooled", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        encode_items(_items(), settings, loaded=loaded, progress=False)
    monkeypatch.setattr(embed, "mean_pooled", real)
    logs = []
    resumed = encode_items(_items(), settings, loaded=loaded, progress=False, log=logs.append)
    assert any("32 of 70" in m for m in logs)  # two chunks of 16 were kept
    fresh_settings = EncoderSettings(chunk_items=70, batch_size=8, max_tokens=63)  # another key: encoded anew
    fresh = encode_items(_items(), fresh_settings, loaded=loaded, progress=False)
    np.testing.assert_allclose(resumed.vectors, fresh.vectors, atol=1e-5)


def test_projection_centres_reduces_and_normalises():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(200, 16)) * 0.1 + 3.0  # one dominant shared direction, like LLM states
    out, info = project(raw, pca_dim=8)
    assert out.shape == (200, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert info["mean_pair_cosine_before"] > 0.9 and abs(info["mean_pair_cosine_after"]) < 0.1
    same, _ = project(raw, pca_dim=8)
    np.testing.assert_array_equal(out, same)


@pytest.mark.filterwarnings("error")
def test_projection_of_degenerate_vectors_reports_no_cosine_without_numpy_warnings():
    for vectors in (np.zeros((3, 4)), np.ones((1, 4))):  # zero vectors (no direction), a single item (no pair)
        out, info = project(vectors, pca_dim=2)
        assert np.isnan(info["mean_pair_cosine_before"]) and np.isfinite(out).all()


# ------------------------------------------------------------------ retrieved folders in evaluate and train (ReiT)


@pytest.fixture
def retrieved(tmp_path):
    return _toy_retrieved(tmp_path, k=8)


def test_over_budget_prompts_drop_the_least_similar_retrieved_items_first(retrieved):
    from llmrec.prompts.settings import PromptSettings

    _, path = retrieved
    prepared = PreparedData.load(path)
    tok = tiny_loaded().tokenizer
    row = next(r for r in prepared.splits["test"].to_pylist() if len(r["history_items"]) == 8)
    full = PromptSettings(max_prompt_tokens=None).renderer(prepared, tok, "test").render([row])[0][0]
    assert full.history_kept == 8  # a retrieved folder shows its K items by default
    budget = len(full) - 1
    cut = PromptSettings(max_prompt_tokens=budget).renderer(prepared, tok, "test").render([row])[0][0]
    assert cut.history_kept < 8
    sims = row["history_similarity"]
    keep = sorted(sorted(range(8), key=lambda i: (sims[i], i))[8 - cut.history_kept :])
    titles = [prepared.items.set_index("item").loc[row["history_items"][i], "title"] for i in keep]
    dropped = [prepared.items.set_index("item").loc[row["history_items"][i], "title"] for i in range(8) if i not in keep]
    for t in titles:
        assert t in cut.text
    assert sum(t in cut.text for t in dropped) < len(dropped)


def test_evaluate_reads_a_retrieved_folder_and_counts_cut_prompts(tmp_path, retrieved):
    from llmrec.evaluate import EvaluateConfig, evaluate

    _, path = retrieved
    cfg = EvaluateConfig(data=str(path), limit=20, max_prompt_tokens=90, run_dir=str(tmp_path / "ev"))
    _, result = evaluate(cfg, loaded=tiny_loaded(), log=lambda m: None, progress=False)
    assert result["run"]["history_k"] is None
    assert result["run"]["prompts_with_history_cut"] > 0


def test_reit_trains_on_both_views_of_the_same_samples(tmp_path, retrieved):
    from llmrec.errors import ConfigError
    from llmrec.train import TrainConfig, train

    original, subr = retrieved
    cfg = TrainConfig(data=str(subr), mix_data=[str(original)], train_samples=8, run_dir=str(tmp_path / "reit"),
                      optim={"max_steps": 1, "batch_size": 8}, selection={"enabled": False}, test={"limit": 10})
    _, result = train(cfg, loaded=tiny_loaded(), progress=False, log=lambda m: None)
    assert result["train"]["samples"] == 8 and result["train"]["examples"] == 16
    assert result["test"]["data"] == str(subr)

    (tmp_path / "other").mkdir()
    other = _toy_rella(tmp_path / "other", min_history=3)  # other samples: refused before anything runs
    bad = cfg.model_copy(update={"mix_data": [str(other)], "run_dir": str(tmp_path / "bad")})
    with pytest.raises(ConfigError, match="same samples"):
        train(bad, loaded=tiny_loaded(), progress=False, log=lambda m: None)
    assert not (tmp_path / "bad").exists()


def test_attention_case_study_draws_one_strip_per_case(tmp_path, retrieved, tiny_model_folder):
    from llmrec.attention import AttentionCase, attention_case_study
    from llmrec.llm import ModelConfig
    from llmrec.prompts.settings import PromptSettings

    original, subr = retrieved
    row = next(r for r in PreparedData.load(subr).splits["test"].to_pylist() if len(r["history_items"]) == 8)
    cases = [AttentionCase("recent-8", str(original)), AttentionCase("SUBR", str(subr))]
    out = tmp_path / "att" / "case.png"
    summary = attention_case_study(cases, row["sample_id"], out, settings=PromptSettings(history_k=8),
                                   model=ModelConfig(name=str(tiny_model_folder), device="cpu"), log=lambda m: None)
    assert out.stat().st_size > 0 and out.with_suffix(".json").exists()
    recent, retrieved_case = summary["cases"]
    assert [i["item"] for i in retrieved_case["items"]] == row["history_items"]
    for case in summary["cases"]:
        assert len(case["items"]) == 8 and all(i["tokens"] > 0 for i in case["items"])
        assert 0 < case["history_share"] <= 1.0
    with pytest.raises(Exception, match="no sample with sample_id"):
        attention_case_study(cases, -5, out, model=ModelConfig(name=str(tiny_model_folder), device="cpu"))


def test_a_sentence_transformers_model_can_encode_the_items(tmp_path):
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    from tests.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    bert = BertModel(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=128))
    bert.save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    word = models.Transformer(str(tmp_path / "bert"), max_seq_length=64)
    st = SentenceTransformer(modules=[word, models.Pooling(word.get_embedding_dimension(), "mean")], device="cpu")
    st.save(str(tmp_path / "st"))
    settings = EncoderSettings(kind="sentence-transformers", model={"name": str(tmp_path / "st"), "device": "cpu"},
                               batch_size=8, chunk_items=32)
    got = encode_items(_items(), settings, progress=False, log=lambda m: None)
    from llmrec.retrieval import item_texts

    expected = st.encode(item_texts(_items(), settings.item_template), batch_size=8, convert_to_numpy=True)
    np.testing.assert_allclose(got.vectors, expected, atol=1e-5)
    assert got.vectors.shape == (70, 16) and encode_items(_items(), settings, progress=False).info["cached"]



def test_a_large_catalogue_runs_in_bounded_memory():
    """70,000 items (an items x items matrix would take 19.6 GB): per-user blocks instead, same result.

    The peak of the memory numpy and Python allocate during ``subr_fast`` (tracemalloc; numpy reports its buffers
    to it) stays under 64 MB: 17 MB measured (the integer vectors, the outputs, the blocks), where even the dense
    matrix of the 12,000-item threshold would take 549 MB. Mutation: ``dense_max_items: int = 80000`` in
    ``subr_fast`` (src/llmrec/retrieval/subr.py), run under ``ulimit -v 8000000``: the dense matrix is asked for
    and the test fails (MemoryError); any block or copy over 64 MB fails the bound.
    """
    import tracemalloc

    rng = np.random.default_rng(5)
    vectors, _ = project(rng.normal(size=(70_000, 16)), None)
    lengths = np.full(30, 300)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    seq_rows = rng.integers(0, 70_000, int(lengths.sum()))
    users = np.repeat(np.arange(30), lengths - 1)
    ends = np.concatenate([np.arange(1, n) for n in lengths])
    tracemalloc.start()
    try:
        fast = subr_fast(seq_rows, starts, users, ends, vectors, 10)  # default dense_max_items: 12,000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MB"
    sample = np.arange(0, len(ends), 97)
    ref = subr_reference(seq_rows, starts, users[sample], ends[sample], vectors, 10)
    chosen = [fast.positions[fast.offsets[s] : fast.offsets[s + 1]].tolist() for s in sample]
    assert chosen == [ref.positions[ref.offsets[i] : ref.offsets[i + 1]].tolist() for i in range(len(sample))]


def test_items_missing_from_items_parquet_fail_before_any_item_is_encoded(tmp_path, monkeypatch):
    """Found in review: the check ran after encoding every item (66 s on ML-1M), and its hint said to encode every
    item of items.parquet, which had been done. The ids are now checked first, naming the file."""
    import llmrec.retrieval.transform as transform

    data = _toy_rella(tmp_path)
    drop = PreparedData.load(data).sequences.to_pylist()[0]["items"][0]
    items = pq.read_table(data / "items.parquet").to_pandas()
    items[items["item"] != drop].to_parquet(data / "items.parquet", index=False)

    def never(*a, **k):
        raise AssertionError("encoded before the ids were checked")

    monkeypatch.setattr(transform, "encode_items", never)
    code, out = run("retrieve", str(data), "-o", str(tmp_path / "subr"), "--pca-dim", "0")
    assert_clean_failure(code, out, str(data / "items.parquet"), "without a vector", repr(drop), "prepare it again")
    assert "encode every item" not in out
    assert not (tmp_path / "subr").exists()


def test_subr_outputs_keep_their_types_and_their_edges():
    """Both SUBR paths and a concatenation of blocks return int64 offsets and int32 positions and similarities
    (half the memory of int64, exact below 2^24); no block concatenates to an empty result; vectors rounded a
    hair above unit length are accepted and others refused with the message. Mutations caught (mutmut,
    llmrec.retrieval.subr): the reference's positions or dots allocated as float64, the concatenation's int32 cast
    dropped, an empty concatenation of one phantom entry, the rounding tolerance's ``>`` made ``>=``, the error
    message reworded."""
    from llmrec.retrieval.subr import Retrieved, concat_retrieved, integer_vectors

    problem = _random_problem(4)
    for got in (subr_fast(*problem), subr_reference(*problem),
                concat_retrieved([subr_fast(*problem), subr_reference(*problem)])):
        assert (got.offsets.dtype, got.positions.dtype, got.dots.dtype) == (np.int64, np.int32, np.int32)
    empty = concat_retrieved([])
    assert (empty.offsets.tolist(), empty.positions.tolist(), empty.dots.tolist()) == ([0], [], [])
    assert empty.positions.dtype == np.int32 and empty.equals(Retrieved(np.zeros(1, np.int64), np.zeros(0, np.int32),
                                                                      np.zeros(0, np.int32)))
    assert integer_vectors(np.array([[1 + 4e-4, 0.0]])).tolist() == [[2049.0, 0.0]]  # float32 normalisation slack
    with pytest.raises(ValueError, match="^SUBR needs L2-normalised vectors$"):
        integer_vectors(np.array([[1.01, 0.0]]))


def test_bench_matmul_rate_reads_the_model_shape():
    """``llmrec bench retrieval``'s ceiling: a float32 matrix product on the model's hidden x intermediate shape,
    in GFLOP/s (positive, finite), for a model with those config fields and without them (defaults)."""
    import math

    from llmrec.bench.retrieval import matmul_gflops
    from tests.tiny_models import tiny_llama

    for model in (tiny_llama(), object()):
        rate = matmul_gflops(model, rows=64, repeats=2)
        assert rate > 0 and math.isfinite(rate)
