"""LLM item knowledge in classic models (``item_text``): frozen pretrained item vectors from the retrieval encoder
in DIN / DIEN / DCNv2 / SIM (FuxiCTR's pretrained-embedding feature) and GRU4Rec / SASRec / NARM / Caser (a
projected text vector, with or without the id embedding).

Planted tasks where the item text carries the signal and ids cannot generalize: the evaluated targets are cold
items (never seen in training) whose vectors share a direction with the training items of their group. The models
with item vectors beat the id-only ones by a stated margin; the vectors stay frozen while their projection trains;
bad inputs are one line; a killed run resumes; another encoding is another run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from llmrec.baselines.itemtext import ITEM_TEXT_FILE, step_inputs, vectors_fingerprint
from llmrec.baselines.models import BASELINES, build_model
from llmrec.baselines.run import check_baseline, load_baseline, run_baseline
from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import PreparedData
from llmrec.errors import ConfigError, DataError
from llmrec.experiments.steps import STEP_KINDS
from llmrec.retrieval import EncoderSettings, encode_items, project
from tests.baseline_helpers import QUIET, baseline_config, check_resume_after_kill
from tests.conftest import write_ml1m_zip
from tests.test_bad_inputs import assert_clean_failure, run

# small networks; the embedding size (8 / 16) differs from the vectors' (10 / 12), so a trainable map exists
CTR_SMALL = {"din": {"embedding_dim": 8, "dnn_hidden_units": [32], "attention_hidden_units": [16]},
             "dien": {"embedding_dim": 8, "dnn_hidden_units": [32], "attention_hidden_units": [16]},
             "dcnv2": {"embedding_dim": 8, "parallel_dnn_hidden_units": [32], "num_cross_layers": 2},
             "sim": {"embedding_dim": 8, "dnn_hidden_units": [32], "short_seq_len": 8, "topk": 8, "attention_dim": 16}}
SEQ_SMALL = {"gru4rec": {"embedding_dim": 16, "hidden_size": 16}, "sasrec": {"embedding_dim": 16, "max_len": 30},
             "narm": {"embedding_dim": 16, "hidden_size": 16}, "caser": {"embedding_dim": 16, "n_h": 4, "n_v": 2}}
CTR_TRAIN = {"epochs": 1, "batch_size": 256, "learning_rate": 1e-2, "patience": 1}
SEQ_TRAIN = CTR_TRAIN

# the CTR task: 80 warm movies rated in the first period, 60 cold ones only in the last (the valid and test samples)
N_WARM, N_COLD = 80, 60
# the ranking task: 8 tracks of 20 warm movies; each user walks 12 of their track's, then one movie of the track
# that nobody else has (the target: never seen by the model for valid and test users)
TRACKS, POOL, USERS = 8, 20, 240


def _vector_file(path, groups: list[int], n_groups: int, noise: int, seed: int = 0) -> str:
    """A parquet file of item vectors: the group's one-hot direction (x2) plus ``noise`` random dimensions."""
    rng = np.random.default_rng(seed)
    vec = np.concatenate([2.0 * np.eye(n_groups)[groups], rng.normal(size=(len(groups), noise))], axis=1)
    pd.DataFrame({"item": [str(m) for m in range(1, len(groups) + 1)], "vector": list(vec)}).to_parquet(path)
    return str(path)


@pytest.fixture(scope="module")
def cold_ctr(tmp_path_factory) -> tuple[str, str]:
    """A ReLLa folder where a user likes the movies of one group (user % 2 == movie % 2); the titles and genres say
    nothing, the vectors say the group. Test samples: cold movies only. Returns (folder, vector file)."""
    root = tmp_path_factory.mktemp("cold-ctr")
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, 61):
        warm = rng.choice(np.arange(1, N_WARM + 1), 30, replace=False)
        cold = rng.choice(np.arange(N_WARM + 1, N_WARM + N_COLD + 1), 6, replace=False)
        for t, m in enumerate(warm):
            rows.append((u, int(m), 5 if m % 2 == u % 2 else 1, 1_000_000 + 1000 * t + u))
        for t, m in enumerate(cold):
            rows.append((u, int(m), 5 if m % 2 == u % 2 else 1, 3_000_000 + 1000 * t + u))
    movies = [(m, f"Movie {m} (1990)", "Drama") for m in range(1, N_WARM + N_COLD + 1)]
    out = root / "rella"
    prepare(PrepareConfig(dataset="ml-1m", protocol="rella", path=str(write_ml1m_zip(root / "ml-1m.zip", rows, movies)),
                          out=str(out)), log=lambda m: None)
    vectors = _vector_file(root / "vectors.parquet", [m % 2 for m in range(1, N_WARM + N_COLD + 1)], 2, noise=8)
    return str(out), vectors


def _track(m: int) -> int:
    return (m - 1) // POOL if m <= TRACKS * POOL else (m - TRACKS * POOL) % TRACKS


@pytest.fixture(scope="module")
def cold_lists(tmp_path_factory) -> tuple[str, str]:
    """A TRSR folder (see TRACKS): the next movie is of the user's track, and the target is always a cold movie."""
    root = tmp_path_factory.mktemp("cold-lists")
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, USERS + 1):
        walk = [*(u % TRACKS * POOL + 1 + rng.choice(POOL, 12, replace=False)), TRACKS * POOL + u]
        rows += [(u, int(m), 4, 1_000_000 + 1000 * t + u) for t, m in enumerate(walk)]
    n_items = TRACKS * POOL + USERS
    movies = [(m, f"Movie {m} (1990)", "Drama") for m in range(1, n_items + 1)]
    out = root / "trsr"
    prepare(PrepareConfig(dataset="ml-1m", protocol="trsr", path=str(write_ml1m_zip(root / "ml-1m.zip", rows, movies)),
                          out=str(out), trsr={"n_train": 160, "n_valid": 40, "n_test": 40}), log=lambda m: None)
    vectors = _vector_file(root / "vectors.parquet", [_track(m) for m in range(1, n_items + 1)], TRACKS, noise=4)
    return str(out), vectors


def _text(path: str, **extra) -> dict:
    return {"encoder": {"kind": "file", "path": path, "pca_dim": None}, **extra}


def _ctr_config(model: str, data: str, run_dir, **extra):
    return baseline_config(model, data, run_dir, extra.pop("params", CTR_SMALL[model]),
                           extra.pop("train", CTR_TRAIN), **extra)


def _seq_config(model: str, data: str, run_dir, **extra):
    return baseline_config(model, data, run_dir, extra.pop("params", SEQ_SMALL[model]),
                           extra.pop("train", SEQ_TRAIN), **extra)


# ---------------------------------------------------------------- the planted tasks

def test_the_cold_ctr_task_is_cold(cold_ctr):
    prepared = PreparedData.load(cold_ctr[0])
    train_items = set(prepared.split("train").column("item").to_pylist())
    assert not train_items & set(prepared.split("test").column("item").to_pylist())


def test_din_with_item_vectors_beats_ids_on_cold_items(cold_ctr, tmp_path):
    """The margin: AUC +0.3 at least (measured: ids .47, with vectors 1.00; chance .5. DIEN / DCNv2 / SIM with 15
    epochs: ids .48 / .47 / .45, with vectors 1.00 / 1.00 / 1.00)."""
    data, vectors = cold_ctr
    train = {"epochs": 6, "batch_size": 256, "learning_rate": 1e-2, "patience": 2}
    _, ids = run_baseline(_ctr_config("din", data, tmp_path / "ids", train=train), **QUIET)
    _, text = run_baseline(_ctr_config("din", data, tmp_path / "text", train=train, item_text=_text(vectors)), **QUIET)
    assert ids["metrics"]["auc"] < 0.65
    assert text["metrics"]["auc"] >= 0.9
    assert text["metrics"]["auc"] - ids["metrics"]["auc"] >= 0.3


def test_the_cold_lists_are_cold(cold_lists):
    prepared = PreparedData.load(cold_lists[0])
    seen = {i for r in prepared.split("train").to_pylist() for i in [*r["history_items"], r["target"]]}
    assert not seen & {r["target"] for r in prepared.split("test").to_pylist()}


def test_gru4rec_with_item_vectors_beats_ids_on_cold_targets(cold_lists, tmp_path):
    """The margin: Recall@3 +0.4 at least (measured: ids .00, text alone .88; chance 3/21 = .14. With up to 20
    epochs, SASRec / GRU4Rec / NARM / Caser: ids .00 (they prefer the warm negatives), text alone .83 / .85 / .85 /
    .88; text and ids together sit between (.68 / .38 / .53 / .28): the id embeddings of the warm items pull toward
    them)."""
    data, vectors = cold_lists
    train = {"epochs": 8, "batch_size": 128, "learning_rate": 1e-2, "patience": 2}
    _, ids = run_baseline(_seq_config("gru4rec", data, tmp_path / "ids", train=train), **QUIET)
    _, text = run_baseline(_seq_config("gru4rec", data, tmp_path / "text", train=train,
                                       item_text=_text(vectors, with_id=False)), **QUIET)
    assert text["metrics"]["recall@3"] - ids["metrics"]["recall@3"] >= 0.4
    assert text["metrics"]["recall@3"] >= 0.6


# ---------------------------------------------------------------- every reader trains, scores, keeps the vectors frozen

def _frozen_and_projection(model) -> tuple[torch.Tensor, torch.Tensor]:
    """(the frozen vectors by item index, the trainable map's weight) of a model with item_text."""
    if hasattr(model, "net"):  # FuxiCTR: the pretrained-embedding feature
        layer = model.net.embedding_layer.embedding_layer.embedding_layers["item_text"]
        return layer.pretrain_embedding.weight, layer.proj.weight
    return model.text_vectors, model.text_proj.weight


@pytest.mark.parametrize("model,with_id", [("din", True), ("din", False), ("dien", True), ("dcnv2", True),
                                           ("sim", True), ("gru4rec", True), ("gru4rec", False), ("sasrec", True),
                                           ("sasrec", False), ("narm", True), ("narm", False), ("caser", False)])
def test_every_reader_trains_and_scores_with_frozen_vectors(cold_ctr, cold_lists, tmp_path, model, with_id):
    ctr = BASELINES[model].kind == "ctr"
    data, vectors = cold_ctr if ctr else cold_lists
    make = _ctr_config if ctr else _seq_config
    config = make(model, data, tmp_path / "run", item_text=_text(vectors, with_id=with_id))
    folder, result = run_baseline(config, **QUIET)
    assert all(np.isfinite(v) for v in result["metrics"].values() if isinstance(v, float))
    scores = pd.read_parquet(folder / "predictions.parquet")["score"]
    assert scores.notna().all() and scores.nunique() > 1
    training = json.loads((folder / "training.json").read_text())
    assert training["features"]["item_text"]["with_id"] is with_id
    assert training["features"]["item_text"]["dim"] == (10 if ctr else 12)
    assert (folder / "model" / ITEM_TEXT_FILE).is_file()

    trained, features, _ = load_baseline(folder)
    frozen, projection = _frozen_and_projection(trained)
    assert not frozen.requires_grad and projection.requires_grad
    assert torch.equal(frozen, torch.as_tensor(features.item_text.vectors))  # unchanged by training
    torch.manual_seed(config.seed)  # the run's initial weights
    initial = _frozen_and_projection(build_model(model, features, config.params))[1]
    assert not torch.allclose(initial, projection)  # the map trained
    names = [n for n, _ in trained.named_parameters()]
    has_id = any(n.endswith("item_id.weight") for n in names) if ctr else trained.item is not None
    assert has_id is with_id


def test_models_that_read_no_item_vectors_say_so(cold_ctr, tmp_path):
    data, vectors = cold_ctr
    with pytest.raises(ConfigError, match="logreg does not read item vectors .*din, dien, dcnv2, sim, .*sasrec"):
        check_baseline(baseline_config("logreg", data, tmp_path, {}, {}, item_text=_text(vectors)))
    assert {n for n, s in BASELINES.items() if s.item_text} == {"din", "dien", "dcnv2", "sim", "gru4rec", "sasrec",
                                                                 "narm", "caser"}


# ---------------------------------------------------------------- the encoding is retrieve's

def test_the_encoding_is_the_retrieve_encoders_and_its_cache(cold_lists, tmp_path, tiny_model_folder, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "cache"))
    data, _ = cold_lists
    prepared = PreparedData.load(data)
    encoder = EncoderSettings(model={"name": str(tiny_model_folder), "device": "cpu"}, pca_dim=6, batch_size=64,
                              chunk_items=200)
    raw = encode_items(prepared.items, encoder, progress=False)  # what llmrec retrieve encodes and caches
    config = _seq_config("sasrec", data, tmp_path / "run", item_text={"encoder": encoder.model_dump()},
                         train={"epochs": 1, "batch_size": 256})
    folder, _ = run_baseline(config, **QUIET)
    training = json.loads((folder / "training.json").read_text())
    assert training["features"]["item_text"]["cached"] is True  # read from retrieve's cache, not encoded again
    _, features, _ = load_baseline(folder)
    projected, _ = project(raw.vectors, 6)
    index = features.items.index
    rows = [index[i] for i in raw.ids]
    np.testing.assert_array_equal(features.item_text.vectors[rows], projected)
    assert not features.item_text.vectors[[0, features.items.unknown]].any()  # padding, unknown: zeros

    # the cache changes under the run (another dimension): loading the run is one line, not a shape error
    cache = next((tmp_path / "cache" / "embeddings").glob("*/vectors.npy"))
    np.save(cache, np.random.default_rng(1).normal(size=(len(raw.ids), 5)).astype(np.float32))
    with pytest.raises(DataError, match="item vectors have 5 dimensions, the run's model was trained on 6"):
        load_baseline(folder)
    np.save(cache, np.full((len(raw.ids), 32), np.nan, dtype=np.float32))
    with pytest.raises(DataError, match="NaN or infinite"):
        load_baseline(folder)


# ---------------------------------------------------------------- identity: another encoding is another run

def test_another_encoding_is_another_run(cold_ctr, tmp_path):
    data, vectors = cold_ctr
    prepared = PreparedData.load(data)
    config = _ctr_config("din", data, tmp_path / "run", item_text=_text(vectors), train={"epochs": 1})
    first = vectors_fingerprint(prepared, config.item_text)
    other_pca = config.model_copy(update={"item_text": config.item_text.model_copy(
        update={"encoder": config.item_text.encoder.model_copy(update={"pca_dim": 4})})})
    assert vectors_fingerprint(prepared, other_pca.item_text) != first
    plan = check_baseline(config)
    assert plan.item_vectors == first
    run_baseline(plan, **QUIET)
    key = step_inputs(config.model_dump(mode="json"))
    assert STEP_KINDS["baseline"].inputs(config.model_dump(mode="json")) == key
    assert step_inputs(config.model_copy(update={"item_text": None}).model_dump(mode="json")) == {}

    table = pd.read_parquet(vectors)  # the same file name, other vectors
    table["vector"] = [np.asarray(v)[::-1].copy() for v in table["vector"]]
    changed = tmp_path / "changed.parquet"
    table.to_parquet(changed)
    moved = _ctr_config("din", data, tmp_path / "run", item_text=_text(str(changed)), train={"epochs": 1})
    assert vectors_fingerprint(prepared, moved.item_text) != first
    assert step_inputs(moved.model_dump(mode="json")) != key
    with pytest.raises(ConfigError, match="holds a run with a different config"):
        run_baseline(moved, **QUIET)


# ---------------------------------------------------------------- bad inputs: one line

def test_bad_item_text_inputs_are_one_line(cold_ctr, tmp_path):
    data, vectors = cold_ctr
    table = pd.read_parquet(vectors)
    table.iloc[:-3].to_parquet(tmp_path / "short.parquet")  # the last 3 items lack a vector
    base = ["baseline", "din", "-d", data, "--run-dir", str(tmp_path / "r"), "--set", "item_text.encoder.kind=file"]
    code, out = run(*base, "--set", f"item_text.encoder.path={tmp_path / 'short.parquet'}")
    assert_clean_failure(code, out, "item_text: 3 of the 140 items of items.parquet have no vector", "e.g. item '",
                         "short.parquet")
    code, out = run(*base)
    assert_clean_failure(code, out, "item_text.encoder.kind=file needs item_text.encoder.path")
    code, out = run(*base, "--set", f"item_text.encoder.path={tmp_path / 'none.parquet'}")
    assert_clean_failure(code, out, "item vector file not found", "none.parquet")
    pd.DataFrame({"item": ["1"], "vec": [[1.0]]}).to_parquet(tmp_path / "cols.parquet")
    code, out = run(*base, "--set", f"item_text.encoder.path={tmp_path / 'cols.parquet'}")
    assert_clean_failure(code, out, "lacks column 'vector'")
    code, out = run("baseline", "logreg", "-d", data, "--run-dir", str(tmp_path / "r"),
                    "--set", f"item_text.encoder.path={vectors}", "--set", "item_text.encoder.kind=file")
    assert_clean_failure(code, out, "logreg does not read item vectors")
    code, out = run(*base, "--set", f"item_text.encoder.path={vectors}", "--set", "item_text.with_ids=true")
    assert_clean_failure(code, out, "with_ids")
    code, out = run(*base, "--set", f"item_text.encoder.path={vectors}", "--set", "params.item_vectors=[1]")
    assert_clean_failure(code, out, "item_vectors")
    assert not (tmp_path / "r" / "model").exists()  # nothing trained


# ---------------------------------------------------------------- resume after a kill

@pytest.mark.parametrize("model", ["din", "sasrec"])
def test_resume_after_kill_with_item_vectors(cold_ctr, cold_lists, tmp_path, monkeypatch, model):
    ctr = BASELINES[model].kind == "ctr"
    data, vectors = cold_ctr if ctr else cold_lists

    def make(run_dir):
        train = {"epochs": 2, "batch_size": 256, "learning_rate": 1e-2, "patience": 5, "checkpoint_every": 2}
        return (_ctr_config if ctr else _seq_config)(model, data, run_dir, train=train,
                                                     item_text=_text(vectors, with_id=ctr))

    check_resume_after_kill(make, tmp_path, monkeypatch, kill_at_step=5)




def test_a_config_without_item_text_keeps_its_identity_and_step_key():
    """``item_text`` is a field added later: unset, it is not in the dump, so the run folders and the experiment
    step keys of the runs without it stay what they were (nothing reruns)."""
    from llmrec.baselines.config import BaselineConfig

    plain = BaselineConfig(model="din", data="d")
    assert "item_text" not in plain.model_dump() and "item_text" not in plain.identity("f")
    assert step_inputs(plain.model_dump(mode="json")) == {}
    with_text = BaselineConfig(model="din", data="d", item_text={})
    assert with_text.model_dump()["item_text"]["with_id"] is True
    assert BaselineConfig.model_validate(with_text.model_dump()) == with_text
    assert BaselineConfig.model_validate(plain.model_dump()) == plain
