"""``engine.kind: ray``: item encoding, SUBR and scoring on 2 local Ray Data workers give the local outputs.

One local Ray cluster (2 CPUs) serves the whole module; starting it takes ~10 s.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import PreparedData
from llmrec.evaluate import EvaluateConfig, evaluate
from llmrec.parallel import EngineSettings, map_tasks
from llmrec.retrieval import RetrievalConfig, retrieve
from llmrec.retrieval.config import EncoderSettings
from llmrec.retrieval.encode import encode_items
from tests.conftest import random_ratings, write_ml1m_zip

RAY = EngineSettings(kind="ray", workers=2)
QUIET = {"log": lambda m: None, "progress": False}


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray = pytest.importorskip("ray")
    yield
    ray.shutdown()


def _worker_pid():
    pid = os.getpid()
    return lambda task: (task * task, pid)


def test_ray_tasks_give_the_local_results_on_two_workers():
    local = dict(map_tasks(list(range(8)), _worker_pid, EngineSettings()))
    remote = dict(map_tasks(list(range(8)), _worker_pid, RAY))
    assert {i: r[0] for i, r in remote.items()} == {i: r[0] for i, r in local.items()}
    assert os.getpid() not in {r[1] for r in remote.values()}  # the work ran in the workers


def _toy_rella(tmp_path):
    zip_path = write_ml1m_zip(tmp_path / "ml-1m.zip", random_ratings(12, 50, (3, 40), seed=4))
    out = tmp_path / "rella"
    prepare(PrepareConfig(dataset="ml-1m", protocol="rella", path=str(zip_path), out=str(out)), log=lambda m: None)
    return out


def test_ray_item_encoding_and_subr_give_the_local_folder(tmp_path, tiny_model_folder, monkeypatch):
    data = _toy_rella(tmp_path)
    encoder = EncoderSettings(model={"name": str(tiny_model_folder), "device": "cpu"}, chunk_items=8, pca_dim=None)
    items = PreparedData.load(data).items

    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "cache-local"))
    local_vectors = encode_items(items, encoder, **QUIET)
    local, _ = retrieve(RetrievalConfig(data=str(data), out=str(tmp_path / "local"), k=4, encoder=encoder), **QUIET)
    # SUBR on Ray workers over the same (cached) vectors: bit for bit the local folder
    on_ray, summary = retrieve(RetrievalConfig(data=str(data), out=str(tmp_path / "ray"), k=4, encoder=encoder,
                                               engine=RAY), **QUIET)
    assert summary["seconds"]["cached"]
    for split in ("train", "valid", "test"):
        a, b = pd.read_parquet(local / f"{split}.parquet"), pd.read_parquet(on_ray / f"{split}.parquet")
        for column in ("history_items", "history_similarity", "history_positions"):
            assert [list(x) for x in a[column]] == [list(x) for x in b[column]], column

    # the encoding itself on Ray workers (a new cache: chunks of 8 items spread over the workers)
    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "cache-ray"))
    ray_vectors = encode_items(items, encoder, engine=RAY, **QUIET)
    assert not ray_vectors.info["cached"] and ray_vectors.ids == local_vectors.ids
    np.testing.assert_allclose(ray_vectors.vectors, local_vectors.vectors, atol=1e-5)
    assert not list((tmp_path / "cache-ray").rglob("chunk-*.npy"))  # the partial chunks were merged


def test_ray_scoring_gives_the_local_predictions(tmp_path, tiny_ml1m, tiny_model_folder):
    cfg = PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(tiny_ml1m), out=str(tmp_path / "tallrec"),
                        tallrec={"history_len": 5, "max_samples": 300})
    data = prepare(cfg, log=lambda m: None)[1]
    base = EvaluateConfig(data=str(data), limit=30, model={"name": str(tiny_model_folder), "device": "cpu"},
                          checkpoint_every=8)
    evaluate(base.model_copy(update={"run_dir": str(tmp_path / "local")}), **QUIET)
    _, result = evaluate(base.model_copy(update={"run_dir": str(tmp_path / "ray"), "engine": RAY}), **QUIET)
    a = pd.read_parquet(tmp_path / "local" / "predictions.parquet")
    b = pd.read_parquet(tmp_path / "ray" / "predictions.parquet")
    assert a["sample_id"].tolist() == b["sample_id"].tolist()
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-6)
    assert result["run"]["engine"] == {"kind": "ray", "workers": 2}
    assert result["run"]["device"] == "ray workers" and "tokenizer only" in result["run"]["model"]  # no model here
    assert not (tmp_path / "ray" / "predictions.partial.jsonl").exists()
