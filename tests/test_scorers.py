"""One scorer interface over prepared samples: a finished baseline run scored again through ``evaluate`` (as a
``SampleScorer``) gives the predictions and metrics of the run's own test pass, for CTR rows and for candidate
lists; the LLM path keeps its records (tests/test_evaluate.py and tests/test_serve.py cover its predictions)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from llmrec.baselines.features import CtrFeatures
from llmrec.baselines.run import BaselineScorer, run_baseline
from llmrec.data.kinds import KINDS
from llmrec.data.prepared import PreparedData
from llmrec.errors import DataError
from llmrec.evaluate import EvaluateConfig, PromptScorer, check_evaluate, evaluate
from llmrec.results import SampleScorer
from tests.baseline_helpers import QUIET, baseline_config
from tests.test_sequential_baselines import walks  # noqa: F401  (the module-scoped TRSR fixture)

TRAIN = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-2, "patience": 2}


def _same_results(run_dir, eval_dir) -> None:
    base = pd.read_parquet(run_dir / "predictions.parquet")
    again = pd.read_parquet(eval_dir / "predictions.parquet")
    pd.testing.assert_frame_equal(base, again)
    m_base = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    m_again = json.loads((eval_dir / "metrics.json").read_text())["metrics"]
    assert m_base == m_again


@pytest.mark.parametrize("model", ["popularity", "logreg"])
def test_a_ctr_baseline_scored_through_evaluate_gives_its_own_predictions(model, tallrec_data, tmp_path):
    """Mutation: let ``BaselineScorer.score_rows`` key the scores in another order, or build the rows' table
    without the split's schema, and the predictions differ."""
    run_dir, result = run_baseline(baseline_config(model, str(tallrec_data), tmp_path / "run", {}, TRAIN), **QUIET)
    scorer = BaselineScorer.from_run(run_dir)
    assert isinstance(scorer, SampleScorer) and scorer.source in ("samples", "chronology")
    plan = check_evaluate(EvaluateConfig(data=str(tallrec_data), run_dir=str(tmp_path / "eval"),
                                         checkpoint_every=16), model=False)
    path, again = evaluate(plan, scorer=scorer, **QUIET)
    _same_results(run_dir, path)
    assert again["metrics"] == result["metrics"]
    assert again["run"]["model"] == f"{model} ({run_dir})" and "mean_prompt_tokens" not in again["run"]  # no LLM facts


def test_a_ranking_baseline_scored_through_evaluate_gives_its_own_predictions(walks, tmp_path):  # noqa: F811
    config = baseline_config("seq_popularity", walks, tmp_path / "run", {}, TRAIN)
    run_dir, result = run_baseline(config, **QUIET)
    scorer = BaselineScorer.from_run(run_dir)
    path, again = evaluate(EvaluateConfig(data=walks, run_dir=str(tmp_path / "eval"), checkpoint_every=50),
                           scorer=scorer, **QUIET)
    _same_results(run_dir, path)
    assert again["metrics"] == result["metrics"] and again["run"]["prompts"] == result["run"]["prompts"]


def test_a_baseline_scorer_keys_its_records_like_the_kind(tallrec_data, tmp_path):
    run_dir, _ = run_baseline(baseline_config("popularity", str(tallrec_data), tmp_path / "run", {}, TRAIN), **QUIET)
    scorer = BaselineScorer.from_run(run_dir)
    rows = PreparedData.load(tallrec_data).split("test", columns=list(scorer.columns)).slice(0, 5).to_pylist()
    seen: list[int] = []
    records = scorer.score_rows(rows, KINDS["ctr"], seen.append)
    assert [r["key"] for r in records] == [str(r["sample_id"]) for r in rows] and seen == [5]
    assert scorer.score_rows([], KINDS["ctr"]) == []
    with pytest.raises(DataError, match="lack column history_items"):
        scorer.score_rows([{k: v for k, v in r.items() if k != "history_items"} for r in rows], KINDS["ctr"])


def test_ctr_features_from_a_table_match_the_split(tallrec_data):
    prepared = PreparedData.load(tallrec_data)
    feats = CtrFeatures.build(prepared, 5)
    rows = np.array([3, 1, 7])
    split = feats.split(prepared, "test", rows)
    table = prepared.split("test").take(rows)
    again = feats.from_table(table, "rows")
    for name in ("sample_id", "user", "item", "label", "start", "end", "flat_items", "flat_ratings"):
        assert np.array_equal(getattr(split, name), getattr(again, name)), name
    with pytest.raises(DataError, match="rows: CTR baselines need a 'label' column"):
        feats.from_table(table.drop_columns(["label"]), "rows")


def test_prompt_scorer_is_a_sample_scorer_and_an_llm_scorer_is_not():
    class Llm:
        def score(self, prompts, progress=None):
            return np.zeros(len(prompts))

    assert not isinstance(Llm(), SampleScorer)
    prompt_scorer = PromptScorer(renderer=SimpleNamespace(columns=["sample_id", "user"]), scorer=Llm())
    assert isinstance(prompt_scorer, SampleScorer) and prompt_scorer.columns == ("sample_id", "user")


def test_the_evaluate_command_scores_with_a_baseline_run(tallrec_data, tmp_path):
    """`llmrec evaluate --baseline RUN` writes the run's own test predictions; a bad run folder is one line."""
    from click.testing import CliRunner

    from llmrec.cli import main

    run_dir, _ = run_baseline(baseline_config("popularity", str(tallrec_data), tmp_path / "run", {}, TRAIN), **QUIET)
    res = CliRunner().invoke(main, ["evaluate", "-d", str(tallrec_data), "--baseline", str(run_dir),
                                    "--run-dir", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    _same_results(run_dir, tmp_path / "eval")
    facts = json.loads((tmp_path / "eval" / "metrics.json").read_text())["run"]
    assert facts["model"] == f"popularity ({run_dir})"
    bad = CliRunner().invoke(main, ["evaluate", "-d", str(tallrec_data), "--baseline", str(tmp_path / "nope"),
                                    "--run-dir", str(tmp_path / "eval2")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output and not (tmp_path / "eval2").exists()
    both = CliRunner().invoke(main, ["evaluate", "-d", str(tallrec_data), "--baseline", str(run_dir), "-m", "x"])
    assert both.exit_code != 0 and "--baseline" in both.output
