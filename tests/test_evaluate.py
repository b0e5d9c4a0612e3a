"""Zero-shot evaluation end to end on tiny random models and tiny prepared data."""

import json

import numpy as np
import pandas as pd
import pytest

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.errors import ConfigError
from llmrec.evaluate import EvaluateConfig, evaluate
from llmrec.llm import scoring
from llmrec.prompts import load_template
from llmrec.prompts.build import PromptData
from llmrec.prompts.template import PromptError
from tests.tiny_models import tiny_loaded


@pytest.fixture(scope="module")
def loaded():
    return tiny_loaded("llama")


def prepared(tmp_path, zip_path, protocol, **proto):
    cfg = PrepareConfig(dataset="ml-1m", protocol=protocol, path=str(zip_path), out=str(tmp_path / protocol),
                        **({protocol: proto} if proto else {}))
    return prepare(cfg, log=lambda m: None)[1]


@pytest.mark.parametrize("protocol,proto", [("tallrec", {"history_len": 5, "max_samples": 200}),
                                            ("rella", {}),
                                            ("trsr", {"min_interactions": 8, "max_interactions": 40, "eval_negatives": 5, "n_test": 12, "n_valid": 5})])
def test_evaluate_writes_a_complete_run(tmp_path, tiny_ml1m, loaded, protocol, proto):
    data = prepared(tmp_path, tiny_ml1m, protocol, **proto)
    cfg = EvaluateConfig(data=str(data), limit=12, run_dir=str(tmp_path / "run"), checkpoint_every=5)
    path, result = evaluate(cfg, loaded=loaded, progress=False, log=lambda m: None)
    files = {p.name for p in path.iterdir()}
    assert {"config.yaml", "metrics.json", "predictions.parquet", "plots"} <= files
    assert "predictions.partial.jsonl" not in files
    preds = pd.read_parquet(path / "predictions.parquet")
    metrics = json.loads((path / "metrics.json").read_text())["metrics"]
    if protocol == "trsr":
        assert len(preds) == 12 * 6 and set(metrics) >= {"recall@3", "mrr@3", "ndcg@10"}
    else:
        assert len(preds) == 12 and set(metrics) >= {"auc", "logloss", "acc"}
        assert preds["score"].between(0, 1).all()
    assert (path / "plots").iterdir()
    assert result["run"]["answer_tokens"] == ["Yes", "No"]


def test_resume_after_interruption_gives_the_same_predictions(tmp_path, tiny_ml1m, loaded, monkeypatch):
    data = prepared(tmp_path, tiny_ml1m, "rella")
    base = dict(data=str(data), limit=20, checkpoint_every=4)
    _, straight = evaluate(EvaluateConfig(**base, run_dir=str(tmp_path / "a")), loaded=loaded, progress=False, log=lambda m: None)

    calls = {"n": 0}
    original = scoring.YesNoScorer.score

    def flaky(self, prompts, progress=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user hits Ctrl-C during the third chunk
        return original(self, prompts, progress)

    monkeypatch.setattr(scoring.YesNoScorer, "score", flaky)
    with pytest.raises(KeyboardInterrupt):
        evaluate(EvaluateConfig(**base, run_dir=str(tmp_path / "b")), loaded=loaded, progress=False, log=lambda m: None)
    partial = (tmp_path / "b" / "predictions.partial.jsonl").read_text().splitlines()
    assert len(partial) == 8 and not (tmp_path / "b" / "metrics.json").exists()
    # a torn last line (killed mid-write) is ignored
    with open(tmp_path / "b" / "predictions.partial.jsonl", "a") as f:
        f.write('{"key": "9')
    monkeypatch.setattr(scoring.YesNoScorer, "score", original)
    logs = []
    _, resumed = evaluate(EvaluateConfig(**base, run_dir=str(tmp_path / "b")), loaded=loaded, progress=False, log=logs.append)
    assert any("8 of 20" in m for m in logs)
    a = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    b = pd.read_parquet(tmp_path / "b" / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b, atol=1e-6)
    assert resumed["metrics"]["auc"] == pytest.approx(straight["metrics"]["auc"], abs=1e-9)
    # a different config in the same folder is refused
    with pytest.raises(ConfigError, match="different config"):
        evaluate(EvaluateConfig(**{**base, "limit": 5}, run_dir=str(tmp_path / "b")), loaded=loaded, progress=False)


def test_token_budget_drops_oldest_history_and_keeps_the_question(loaded):
    texts = PromptData.from_tables(
        pd.DataFrame({"item": [str(i) for i in range(30)], "title": [f"Movie {i}" for i in range(30)], "genres": "Drama"}),
        pd.DataFrame({"user": ["u"], "gender": ["female"], "age": ["25-34"], "occupation": ["writer"]}),
        dataset="ml-1m", label_threshold=3)
    template = load_template("rella_movie")
    hist = texts.history([str(i) for i in range(29)], [4.0] * 29, k=None)
    full = template.render(loaded.tokenizer, texts.variables("u", "29"), hist)
    budget = len(full) - 20
    cut = template.render(loaded.tokenizer, texts.variables("u", "29"), hist, max_tokens=budget)
    assert len(cut) <= budget and 0 < cut.history_kept < 29
    assert cut.candidate_ids == full.candidate_ids  # the question and the candidate are intact
    assert "Movie 28" in cut.text and "Movie 0\"" not in cut.text  # the newest items stay
    assert cut.text.rstrip().endswith("Answer:")
    with pytest.raises(PromptError, match="without any history"):
        template.render(loaded.tokenizer, texts.variables("u", "29"), hist, max_tokens=10)


def test_chat_template_prompts(loaded, tmp_path, tiny_ml1m):
    tok = loaded.tokenizer
    tok.chat_template = "{% for m in messages %}<bos> user {{ m['content'] }} <eos>{% endfor %}{% if add_generation_prompt %} model{% endif %}"
    try:
        data = prepared(tmp_path, tiny_ml1m, "rella")
        _, res = evaluate(EvaluateConfig(data=str(data), limit=4, run_dir=str(tmp_path / "c")), loaded=loaded,
                          progress=False, log=lambda m: None)
        assert res["run"]["chat_template"] is True
    finally:
        tok.chat_template = None


def test_unknown_split_and_template(tmp_path, tiny_ml1m, loaded):
    data = prepared(tmp_path, tiny_ml1m, "rella")
    with pytest.raises(ConfigError, match="no split"):
        evaluate(EvaluateConfig(data=str(data), split="dev", run_dir=str(tmp_path / "x")), loaded=loaded)
    with pytest.raises(ConfigError, match="unknown template"):
        evaluate(EvaluateConfig(data=str(data), template="nope", run_dir=str(tmp_path / "y")), loaded=loaded,
                 progress=False)


def test_scores_match_direct_model_call(tmp_path, tiny_ml1m, loaded):
    """Every saved score is the two-way softmax of the model's own logits on the rendered prompt."""
    import torch

    from llmrec.data.prepared import PreparedData

    data = prepared(tmp_path, tiny_ml1m, "rella")
    path, res = evaluate(EvaluateConfig(data=str(data), limit=6, run_dir=str(tmp_path / "d")), loaded=loaded,
                         progress=False, log=lambda m: None)
    prep = PreparedData.load(data)
    preds = pd.read_parquet(path / "predictions.parquet")
    assert len(preds) == 6
    by_id = {r["sample_id"]: r for r in prep.splits["test"].to_pylist()}
    texts = PromptData.from_tables(prep.items, prep.users, "ml-1m", 3)
    tok = loaded.tokenizer
    yes, no = tok.encode(" Yes", add_special_tokens=False)[0], tok.encode(" No", add_special_tokens=False)[0]
    assert yes != no
    for sample_id, score in zip(preds["sample_id"], preds["score"]):
        row = by_id[sample_id]
        p = load_template("rella_movie").render(tok, texts.variables(row["user"], row["item"]),
                                               texts.history(row["history_items"], row["history_ratings"], 15), 1024)
        with torch.no_grad():
            logits = loaded.model(torch.tensor([p.context_ids + p.candidate_ids])).logits[0, -1]
        expected = torch.softmax(logits[[yes, no]].double(), 0)[0].item()
        assert score == pytest.approx(expected, abs=1e-5), sample_id
    assert np.isfinite(res["metrics"]["logloss"])


def _stats_shown(text: str) -> tuple[int, int] | None:
    """(percent liked, ratings) that rella_movie_stats shows; None for "No other user has rated"."""
    import re

    match = re.search(r"liked the target movie in (\d+)% of ([\d,]+) ratings|No other user has rated", text)
    assert match, text
    return None if match.group(1) is None else (int(match.group(1)), int(match.group(2).replace(",", "")))


def _tenths_shown(text: str) -> int | None:
    """The "About 7 of 10 other users" digit that rella_movie_tenths shows; None when nobody rated it."""
    import re

    match = re.search(r"About (\d+) of 10 other users who rated the target movie liked it|No other user has rated",
                      text)
    assert match, text
    return None if match.group(1) is None else int(match.group(1))


@pytest.mark.parametrize("template,shown,expected", [
    ("rella_movie_stats", _stats_shown, lambda pos, n: (round(100 * pos / n), n)),
    ("rella_movie_tenths", _tenths_shown, lambda pos, n: (round(100 * pos / n) + 5) // 10),  # 65% -> 7, 64% -> 6
])
def test_target_training_statistics_never_show_the_rows_own_label(tmp_path, tiny_ml1m, loaded, template, shown,
                                                                   expected):
    """The target's rated_by / liked_share count the training split only; a training row leaves its
    own label out; valid and test rows see every training row."""
    import re

    from llmrec.data.prepared import PreparedData
    from llmrec.prompts.build import PromptRenderer

    prep = PreparedData.load(prepared(tmp_path, tiny_ml1m, "rella"))
    train = prep.splits["train"].to_pandas()
    counts = train.groupby("item").label.agg(["sum", "count"])
    seen = {"train": 0, "test": 0}
    for split in ("train", "test"):
        renderer = PromptRenderer.for_prepared(prep, loaded.tokenizer, split=split, template=template,
                                               max_tokens=None)
        rows = prep.splits[split].select(["sample_id", "user", "item", "label", "history_items",
                                          "history_ratings"]).slice(0, 40).to_pylist()
        for row, (prompt,) in zip(rows, renderer.render(rows)):
            pos, n = (counts.loc[row["item"]] if row["item"] in counts.index else (0, 0))
            if split == "train":  # leave one out
                pos, n = pos - row["label"], n - 1
            if n == 0:
                assert shown(prompt.text) is None
            else:
                assert shown(prompt.text) == expected(pos, n)
                seen[split] += 1
    assert seen["train"] and seen["test"]
    assert len(rows[-1]["history_ratings"]) < renderer.history_k  # a history shorter than K is shown whole
    liked = re.search(r"The user liked (\d+) of these (\d+) movies", prompt.text)
    shown = rows[-1]["history_ratings"][-renderer.history_k:]
    assert (int(liked.group(1)), int(liked.group(2))) == (sum(r > 3 for r in shown), len(shown)), prompt.text


def test_template_statistics_without_a_training_split_is_a_clear_error(loaded):
    from llmrec.errors import DataError

    texts = PromptData({"a": {"title": "A"}}, {}, "ml-1m")
    with pytest.raises(DataError, match="training statistics"):
        load_template("rella_movie_stats").render(loaded.tokenizer, texts.variables("u", "a"), [])
    # templates that do not show them never need them
    assert "A" in load_template("rella_movie_counts").render(loaded.tokenizer, texts.variables("u", "a"), []).text


def test_intervals_resampling_users_are_recorded_when_users_have_several_samples(tmp_path, tiny_ml1m, loaded):
    """Samples of one user are not independent: beside the per-sample interval, metrics.json holds the interval
    that resamples whole users (the same bootstrap with the users as groups), and `llmrec compare` shows it."""
    from llmrec.metrics import auc, bootstrap_ci
    from llmrec.tables import compare_table

    data = prepared(tmp_path, tiny_ml1m, "rella")
    path, _ = evaluate(EvaluateConfig(data=str(data), limit=60, run_dir=str(tmp_path / "run")), loaded=loaded,
                       progress=False, log=lambda m: None)
    preds = pd.read_parquet(path / "predictions.parquet")
    metrics = json.loads((path / "metrics.json").read_text())["metrics"]
    assert preds["user"].nunique() < len(preds)  # several samples per user
    assert metrics["users"] == preds["user"].nunique() and set(metrics["ci95_by_user"]) == {"auc", "logloss", "acc"}
    expected = bootstrap_ci(auc, preds["label"].to_numpy(), preds["score"].to_numpy(),
                            groups=preds["user"].astype(str).to_numpy())
    assert metrics["ci95_by_user"]["auc"] == [round(expected[0], 6), round(expected[1], 6)]
    shown = compare_table([str(path)])
    assert "resampling whole users" in shown and f"({metrics['users']} users)" in shown
    assert "users" not in shown.splitlines()[0]  # a count, not a metric column
    # one list per user (the TRSR protocol): resampling users is resampling lists, nothing more is recorded
    trsr = prepared(tmp_path, tiny_ml1m, "trsr", min_interactions=8, max_interactions=40, eval_negatives=5,
                    n_test=12, n_valid=5)
    path, _ = evaluate(EvaluateConfig(data=str(trsr), limit=12, run_dir=str(tmp_path / "rank")), loaded=loaded,
                       progress=False, log=lambda m: None)
    ranked = json.loads((path / "metrics.json").read_text())["metrics"]
    assert "ci95_by_user" not in ranked and "users" not in ranked and "resampling" not in compare_table([str(path)])


def test_ranking_intervals_resample_users_with_several_lists(tmp_path):
    import numpy as np

    from llmrec.metrics import bootstrap_ci
    from llmrec.results import write_results
    from llmrec.runs import RunDir

    rows = [{"sample_id": i, "user": f"u{i % 3}", "candidates": ["a", "b", "c"], "labels": [1, 0, 0]} for i in range(9)]
    rank = [1, 2, 3, 1, 1, 2, 3, 3, 1]  # the positive's rank in each list
    done = {}  # the positive (candidate 0) scores 3 (rank 1), 1.5 (rank 2) or 0 (rank 3) against 2 and 1
    for i in range(9):
        for j, score in enumerate(([3.0, 1.5, 0.0][rank[i] - 1], 2.0, 1.0)):
            done[f"{i}:{j}"] = {"score": score}
    (tmp_path / "run").mkdir()
    metrics, _ = write_results(RunDir(tmp_path / "run"), rows, done, "ranking", "t")
    preds = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    pos = preds[preds["label"] == 1]
    ranks = [1 + int((preds[preds["sample_id"] == s]["score"] > sc).sum()) for s, sc in zip(pos["sample_id"], pos["score"])]
    assert ranks == rank and metrics["users"] == 3
    mrr3 = np.array([1 / r for r in rank])
    lo, hi = bootstrap_ci(np.mean, mrr3, groups=np.array([f"u{i % 3}" for i in range(9)]))
    assert metrics["ci95_by_user"]["mrr@3"] == [round(lo, 6), round(hi, 6)]


def test_a_slow_evaluate_journals_by_time_so_a_kill_loses_little(tmp_path, tiny_ml1m, loaded, monkeypatch):
    """Found in review: an evaluate killed before its first 64 prompts lost all its work. Partial predictions are
    also written about every ``checkpoint_seconds``: a fake scorer at 20 prompts/s, killed mid-piece after 1.6 s
    with checkpoint_every=64, has journaled all but the last ~0.5 s."""
    import time

    data = prepared(tmp_path, tiny_ml1m, "rella")
    started, per_prompt, kill_after, seconds = time.perf_counter(), 0.05, 1.6, 0.5
    state = {"scored": 0}

    def slow(self, prompts, progress=None):
        for _ in prompts:
            if time.perf_counter() - started > kill_after:
                state["killed"] = time.perf_counter()
                raise KeyboardInterrupt  # killed in the middle of a piece
            time.sleep(per_prompt)
            state["scored"] += 1
        return np.full(len(prompts), 0.5)

    monkeypatch.setattr(scoring.YesNoScorer, "score", slow)
    run_dir = tmp_path / "run"
    cfg = EvaluateConfig(data=str(data), limit=60, run_dir=str(run_dir), checkpoint_every=64, checkpoint_seconds=seconds)
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        evaluate(cfg, loaded=loaded, progress=False, log=lambda m: None)
    partial = run_dir / "predictions.partial.jsonl"
    journaled = len(partial.read_text().splitlines())
    assert journaled >= 8, journaled  # by count alone (64) it would be 0
    lost = state["scored"] - journaled
    assert lost * per_prompt <= 2 * seconds, (lost, journaled)
    # and the default is by time too (30 s); null keeps the count only
    assert EvaluateConfig(data="d").checkpoint_seconds == 30
    assert EvaluateConfig(data="d", checkpoint_seconds=None).checkpoint_seconds is None
