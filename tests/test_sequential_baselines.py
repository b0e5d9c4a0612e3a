"""Sequential baselines on candidate lists: the adapter from TRSR samples, one conformance test
every model passes (beats the popularity floor on a planted order, masking, determinism,
save/load), resume after a kill, the CLI and a smoke test on real Amazon Games data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from llmrec.baselines.config import BaselineConfig
from llmrec.baselines.models import BASELINES
from llmrec.baselines.run import load_baseline, run_baseline
from llmrec.baselines.sequences import SeqBatch, SeqFeatures
from llmrec.baselines.tasks import predict_ranking
from llmrec.cli import main
from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import PreparedData
from llmrec.errors import ConfigError, DataError
from llmrec.metrics import ranking_report
from tests.baseline_helpers import QUIET, baseline_config, check_resume_after_kill
from tests.conftest import write_ml1m_zip

RANKING_MODELS = sorted(n for n, spec in BASELINES.items() if spec.kind == "ranking")
SMALL = {"gru4rec": {"embedding_dim": 16, "hidden_size": 16}, "sasrec": {"embedding_dim": 16, "max_len": 30},
         "narm": {"embedding_dim": 16, "hidden_size": 16}, "caser": {"embedding_dim": 16, "n_h": 4, "n_v": 2},
         "ncf": {"embedding_dim": 16, "mlp_hidden": [16]}}
TRACKS, TRACK_LEN = 8, 30


def planted_walks(seed: int = 0) -> list[tuple]:
    """240 movies in 8 tracks of 30; each of 240 users walks 12-20 consecutive movies of one track
    (cyclically, from a random start): the next movie is always the successor of the last."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, 241):
        track, start, n = u % TRACKS, int(rng.integers(TRACK_LEN)), int(rng.integers(12, 21))
        for t in range(n):
            movie = track * TRACK_LEN + (start + t) % TRACK_LEN + 1
            rows.append((u, movie, 4, 1_000_000 + 1000 * t + u))
    return rows


@pytest.fixture(scope="module")
def walks(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("walks")
    zip_path = write_ml1m_zip(root / "ml-1m.zip", planted_walks())
    out = root / "walks-trsr"
    prepare(PrepareConfig(dataset="ml-1m", protocol="trsr", path=str(zip_path), out=str(out),
                          trsr={"n_train": 160, "n_valid": 40, "n_test": 40}), log=lambda m: None)
    return str(out)


def _config(model: str, data: str, run_dir, **extra) -> BaselineConfig:
    extra.setdefault("train", {"epochs": 30, "batch_size": 64, "learning_rate": 1e-2, "patience": 5})
    return baseline_config(model, data, run_dir, extra.pop("params", SMALL.get(model, {})), **extra)


# ---------------------------------------------------------------- adapter

def test_adapter_instances_windows_and_interactions(walks):
    prepared = PreparedData.load(walks)
    feats = SeqFeatures.build(prepared, 4)
    train = feats.split(prepared, "train")
    rows = prepared.split("train").to_pylist()
    inst = feats.instances(train)
    assert len(inst) == sum(len(r["history_items"]) for r in rows)  # one per item after the first, target included
    enc = feats.items.encode
    first = rows[0]
    sequence = enc([*first["history_items"], first["target"]]).tolist()
    b = feats.train_batch(inst, np.arange(len(sequence) - 1))
    for t in range(1, len(sequence)):
        want = sequence[max(0, t - 4):t]
        assert b.history[t - 1].tolist() == [0] * (4 - len(want)) + want  # left-padded, most recent last
        assert b.target[t - 1] == sequence[t]
    test = feats.split(prepared, "test")
    tb = feats.batch(test, np.arange(3))
    for i, r in enumerate(prepared.split("test").to_pylist()[:3]):
        assert tb.candidates[i].tolist() == enc(r["candidates"]).tolist()
        assert tb.labels[i].tolist() == r["labels"]
        assert tb.history[i].tolist() == enc(r["history_items"][-4:]).tolist()
    # NCF's inputs: training sequences with their targets, evaluation users' histories without theirs
    users, items = feats.interactions(train, [test])
    n_test_hist = sum(len(r["history_items"]) for r in prepared.split("test").to_pylist())
    assert len(items) == len(inst) + len(train) + n_test_hist
    test_targets = set(zip(test.user.tolist(), enc([r["target"] for r in prepared.split("test").to_pylist()]).tolist()))
    assert not test_targets & set(zip(users.tolist(), items.tolist()))


def test_ctr_models_reject_ranking_folders_and_back(walks, tmp_path):
    with pytest.raises(DataError, match="ranking folder"):
        run_baseline(_config("din", walks, tmp_path / "a"), **QUIET)
    with pytest.raises(ConfigError, match="not a ranking metric"):
        run_baseline(_config("gru4rec", walks, tmp_path / "a", valid={"metric": "auc"}), **QUIET)
    with pytest.raises(ConfigError, match="reads the history"):
        run_baseline(_config("sasrec", walks, tmp_path / "a", history_len=0), **QUIET)
    with pytest.raises(ConfigError, match="bogus not an argument of SASRec"):
        run_baseline(_config("sasrec", walks, tmp_path / "a", params={"bogus": 1}), **QUIET)
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------- conformance

@pytest.fixture(scope="module")
def floor(walks, tmp_path_factory) -> float:
    _, result = run_baseline(_config("seq_popularity", walks, tmp_path_factory.mktemp("pop") / "run"), **QUIET)
    return result["metrics"]["recall@3"]


@pytest.mark.parametrize("name", RANKING_MODELS)
def test_conformance(name, walks, floor, tmp_path):
    """Every model: beats the popularity floor on the planted order, writes a run folder of the
    evaluate format, masks padding, is deterministic, reloads exactly."""
    path, result = run_baseline(_config(name, walks, tmp_path / "a"), **QUIET)
    m = result["metrics"]
    prepared = PreparedData.load(walks)
    n_test = prepared.split("test").num_rows
    if name == "seq_popularity":
        assert m["recall@3"] < 0.4  # the tracks are equally popular: near chance (3/21)
    else:
        assert m["recall@3"] > floor + 0.3, (name, m["recall@3"], floor)
    preds = pd.read_parquet(path / "predictions.parquet")
    assert len(preds) == n_test * 21 and set(preds.columns) >= {"sample_id", "candidate", "label", "score"}
    scores = preds["score"].to_numpy().reshape(n_test, 21)
    labels = preds["label"].to_numpy().reshape(n_test, 21)
    assert abs(ranking_report(scores, labels, ks=(3,))["recall@3"] - m["recall@3"]) < 1e-12
    for f in ("config.yaml", "metrics.json", "training.json", "model/best.pt", "model/features.json"):
        assert (path / f).exists(), f

    _, again = run_baseline(_config(name, walks, tmp_path / "b"), **QUIET)
    assert np.array_equal(pd.read_parquet(tmp_path / "b" / "predictions.parquet")["score"], preds["score"])

    model, features, _ = load_baseline(path)
    test = features.split(prepared, "test")
    assert np.allclose(predict_ranking(model, features, test), scores, atol=1e-5)

    # more left padding changes nothing; empty and one-item histories score finitely
    wide = SeqFeatures(features.items, features.users, features.history_len + 7)
    assert np.allclose(predict_ranking(model, wide, test), scores, atol=1e-5)
    batch = features.batch(test, np.arange(4))
    batch.history[0] = 0
    if batch.history.shape[1]:
        batch.history[1, :-1] = 0
    with torch.no_grad():
        out = model.scores(SeqBatch(batch.user, batch.history, candidates=batch.candidates))
    assert out.shape == (4, 21) and torch.isfinite(out).all()


def test_resume_after_interruption_gives_the_same_result(walks, tmp_path, monkeypatch):
    train = {"epochs": 3, "batch_size": 64, "learning_rate": 1e-2, "patience": 5, "checkpoint_every": 4}
    logs = check_resume_after_kill(lambda d: _config("sasrec", walks, d, train=train), tmp_path, monkeypatch,
                                   kill_at_step=11)
    assert any("resuming from step 8" in m for m in logs), logs


def test_cli_runs_a_sequential_model_and_bench(walks, tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["baseline", "gru4rec", "-d", walks, "--run-dir", str(tmp_path / "g"),
                               "--set", "train.epochs=2", "--set", "params.embedding_dim=8"])
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "g" / "metrics.json").read_text())["metrics"]["recall@3"] >= 0
    listed = runner.invoke(main, ["baseline", "--list"])
    assert all(name in listed.output for name in RANKING_MODELS)
    from llmrec.bench.baselines import run

    result = run(walks, steps=2, batch_size=32, score_samples=20, log=lambda m: None)
    assert set(result["models"]) == set(RANKING_MODELS)
    assert all(e["train_samples_per_s"] > 0 and e["score_samples_per_s"] > 0 for e in result["models"].values())


@pytest.mark.shared_data
def test_real_amazon_games_sequential_baselines(shared_data, tmp_path):
    """Smoke test on real data: the TRSR split of Amazon Games, 500 training users, two models."""
    data = prepare(PrepareConfig(dataset="amazon-games", protocol="trsr", data_root=str(shared_data),
                                 out=str(tmp_path / "g")), log=lambda m: None)[1]
    results = {}
    for name in ("seq_popularity", "sasrec"):
        _, result = run_baseline(BaselineConfig(model=name, data=str(data), train_samples=500, seed=0,
                                                run_dir=str(tmp_path / name), valid={"limit": 200},
                                                test={"limit": 300}, params={"embedding_dim": 16} if name == "sasrec"
                                                else {}, train={"epochs": 2, "batch_size": 256}), **QUIET)
        results[name] = result["metrics"]
        assert result["run"]["samples"] == 300 and 0 <= result["metrics"]["recall@3"] <= 1
    assert results["seq_popularity"]["recall@10"] > 10 / 21  # popular targets, uniform negatives
