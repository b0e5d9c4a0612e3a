"""The sample kind is one record (llmrec.data.kinds): the code asks it instead of branching on a kind's name.

The review behind issue 32 counted 36 sites in 17 files that compared a kind name ("ctr", "ranking",
"instruction") and 4 places that sniffed the kind from the columns with 4 different rules. These tests
read the source and keep both at the numbers below; a new branch on a kind name fails here and belongs
on the :class:`~llmrec.data.kinds.SampleKind` record instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from llmrec.data.kinds import KINDS, check_columns, detect
from llmrec.errors import ConfigError, DataError

SRC = Path(__file__).resolve().parents[1] / "src" / "llmrec"
KIND_NAMES = set(KINDS)
MARKERS = {k.marker for k in KINDS.values()} | {"candidates", "labels", "target", "instruction"}

# Where a comparison with a kind's name is still the right thing, and why:
# * baselines: a baseline spec names the kind of samples it reads (``BaselineSpec.kind``, a registry key), and
#   "the baselines for this folder" are those whose kind is the folder's: ``spec.kind == found.name`` (x2:
#   the check's hint and the benchmark's default list).
ALLOWED_KIND_COMPARISONS = 2


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "data" / "kinds.py":
            continue
        yield path, ast.parse(path.read_text(), filename=str(path))


def _is_kind_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in KIND_NAMES


def _names_kind(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (isinstance(node, ast.Name) and node.id == "kind")


def _sites(test) -> list[str]:
    found = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and test(node):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    return found


def test_no_branch_on_a_kind_name_outside_the_kind_records():
    """Mutation: put back ``if renderer.kind == "ranking":`` in evaluate.py (or any ``kind == "ctr"``): this fails."""
    def compares_kind(node: ast.Compare) -> bool:
        sides = [node.left, *node.comparators]
        by_name = any(_names_kind(s) for s in sides) and any(isinstance(s, ast.Attribute) and s.attr == "name"
                                                             for s in sides)
        return any(_is_kind_name(s) for s in sides) or by_name

    sites = _sites(compares_kind)
    assert len(sites) <= ALLOWED_KIND_COMPARISONS, f"branches on a sample kind (ask its SampleKind record): {sites}"


def test_the_kind_is_sniffed_from_columns_in_one_place():
    """Mutation: ``"ranking" if "candidates" in table.column_names else "ctr"`` anywhere else: this fails."""
    def sniffs(node: ast.Compare) -> bool:
        return (isinstance(node.left, ast.Constant) and node.left.value in MARKERS
                and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
                and any("column" in ast.unparse(c) for c in node.comparators))

    assert _sites(sniffs) == [], "detect the kind with llmrec.data.kinds.detect"


@pytest.mark.parametrize("columns, kind", [
    (["sample_id", "user", "item", "label", "history_items", "history_ratings"], "ctr"),
    (["sample_id", "user", "candidates", "labels", "history_items", "history_ratings", "summary"], "ranking"),
    (["sample_id", "instruction", "input", "output", "label"], "instruction"),
    (["sample_id", "user"], "ctr"),  # nothing else matches: reported as CTR samples missing their columns
])
def test_detect_is_one_rule_over_column_names(columns, kind):
    table = pa.table({c: [None] for c in columns})
    assert detect(columns).name == detect(table).name == detect(table.schema).name == kind


def test_missing_columns_name_the_file_and_the_kind():
    with pytest.raises(DataError, match=r"test\.parquet: field 'labels': missing column \(ranking samples need"):
        check_columns(["sample_id", "user", "candidates", "history_items", "history_ratings"], "ranking",
                      "test.parquet")


def test_one_default_ranking_metric_for_train_baselines_and_experiments():
    from llmrec.baselines.config import BaselineConfig  # noqa: F401 (its default comes from the record)
    from llmrec.train.config import SelectionSettings

    assert SelectionSettings().metric_for("ranking") == KINDS["ranking"].default_metric == "ndcg@10"
    assert SelectionSettings().metric_for("ctr") == KINDS["ctr"].default_metric == "auc"


def test_each_kind_checks_its_own_metrics():
    KINDS["ranking"].check_metric("mrr@10", "selection.metric")
    KINDS["ctr"].check_metric("logloss", "selection.metric")
    with pytest.raises(ConfigError, match="selection.metric: 'auc' is not a ranking metric"):
        KINDS["ranking"].check_metric("auc", "selection.metric")
    with pytest.raises(ConfigError, match="valid.metric: 'recall@3' is not a CTR metric"):
        KINDS["ctr"].check_metric("recall@3", "valid.metric")


def test_keys_labels_and_training_rows_of_candidate_lists():
    rows = [{"sample_id": 5, "user": "u", "candidates": ["a", "b", "c"], "labels": [0, 1, 0]}]
    kind = KINDS["ranking"]
    assert kind.keys(rows[0]) == ["5:0", "5:1", "5:2"] and kind.prompts_in(rows[0]) == 3
    assert kind.labels(rows).tolist() == [[0, 1, 0]]
    assert [(r["item"], r["label"]) for r in kind.training_rows(rows, negatives=1)] == [("b", 1), ("a", 0)]
    ctr = [{"sample_id": 1, "label": 1}, {"sample_id": 2, "label": 0}]
    assert KINDS["ctr"].keys(ctr[0]) == ["1"] and KINDS["ctr"].training_rows(ctr) is ctr
    assert np.array_equal(KINDS["ctr"].labels(ctr), [1, 0])


def test_scoring_a_kind_gives_hand_computed_metrics():
    rows = [{"sample_id": i, "user": f"u{i % 2}", "item": str(i), "label": lab} for i, lab in enumerate([1, 0, 1, 0])]
    scored = KINDS["ctr"].score(rows, {"0": 0.9, "1": 0.8, "2": 0.3, "3": 0.1})
    assert scored.metrics["auc"] == 0.75 and scored.metrics["positive_rate"] == 0.5 and scored.users == 2
    lists = [{"sample_id": 0, "user": "u", "candidates": ["a", "b", "c"], "labels": [0, 1, 0]}]
    ranked = KINDS["ranking"].score(lists, {"0:0": 0.9, "0:1": 0.5, "0:2": 0.1})
    assert ranked.metrics["mrr@3"] == 0.5 and ranked.metrics["recall@1"] == 0.0 and ranked.ranks.tolist() == [2]
