"""Conformance test classes: every protocol and every scorer inherits one and passes it.

A new protocol adds ``class TestMine(ProtocolConformance): protocol = "mine"`` (and its
builder settings for the tiny data); a new backend's scorer adds a ``ScorerConformance``
subclass that builds it. ``tests/test_conformance.py`` fails when a registered protocol or
backend has no such class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from llmrec.errors import ModelError
from llmrec.llm import EncodedPrompt, Scorer


class ProtocolConformance:
    """Splits, columns, determinism, the leakage audit and prompt rendering of one protocol."""

    protocol: ClassVar[str]
    settings: ClassVar[dict[str, Any]] = {}

    def build(self, out: Path, zip_path: Path) -> Path:
        from llmrec.data.prepare import PrepareConfig, prepare

        cfg = PrepareConfig(dataset="ml-1m", protocol=self.protocol, path=str(zip_path), out=str(out),
                            **({self.protocol: self.settings} if self.settings else {}))
        return prepare(cfg, log=lambda m: None)[1]

    @pytest.fixture
    def built(self, tmp_path, tiny_ml1m) -> Path:
        return self.build(tmp_path / "p", tiny_ml1m)

    def test_splits_and_columns_match_the_protocol_record(self, built):
        from llmrec.data.prepared import PreparedData
        from llmrec.data.protocols import PROTOCOLS

        record = PROTOCOLS[self.protocol]
        prepared = PreparedData.load(built)
        assert prepared.protocol == self.protocol
        assert {"train", "valid", "test"} <= set(prepared.splits)
        common = {"sample_id", "user", "history_items", "history_ratings", "timestamp"}
        own = {"ranking": {"candidates", "labels"}, "ctr": {"item", "label"}}[record.kind]
        for name, table in prepared.splits.items():
            assert table.num_rows > 0, name
            assert common | own <= set(table.column_names), (name, table.column_names)
            assert len(set(table["sample_id"].to_pylist())) == table.num_rows, f"{name}: duplicate sample ids"

    def test_deterministic(self, built, tmp_path, tiny_ml1m):
        from llmrec.data.prepared import PreparedData

        again = PreparedData.load(self.build(tmp_path / "again", tiny_ml1m))
        first = PreparedData.load(built)
        for name, table in first.splits.items():
            assert table.equals(again.splits[name]), name
        assert first.fingerprint() == again.fingerprint()

    def test_the_audit_finds_no_leak(self, built):
        from llmrec.data.audit import audit_prepared

        report = audit_prepared(built)
        assert report["ok"], report

    def test_every_split_renders_with_the_default_template(self, built):
        from llmrec.data.prepared import PreparedData
        from llmrec.prompts.settings import PromptSettings
        from tests.tiny_models import tiny_tokenizer

        prepared = PreparedData.load(built)
        tok = tiny_tokenizer()
        for name, table in prepared.splits.items():
            renderer = PromptSettings().renderer(prepared, tok, name)
            rows = table.select([c for c in renderer.columns if c in table.column_names]).slice(0, 3).to_pylist()
            groups = renderer.render(rows)
            assert len(groups) == len(rows)
            assert all(len(p.context_ids) + len(p.candidate_ids) > 0 for g in groups for p in g)


class ScorerConformance:
    """What every :class:`~llmrec.llm.Scorer` promises: probabilities, input order, batch invariance."""

    tolerance: ClassVar[float] = 1e-4

    def make_scorer(self) -> Scorer:
        raise NotImplementedError

    def prompts(self) -> list[EncodedPrompt]:
        from tests.tiny_models import random_prompts

        mixed = random_prompts(7, vocab=16, seed=11)
        shared = random_prompts(5, vocab=16, seed=12, shared_context=True)
        return mixed + shared

    @pytest.fixture
    def scorer(self) -> Scorer:
        return self.make_scorer()

    def test_is_a_scorer(self, scorer):
        assert isinstance(scorer, Scorer)

    def test_probabilities_in_input_order(self, scorer):
        prompts = self.prompts()
        scores = scorer.score(prompts)
        assert isinstance(scores, np.ndarray) and scores.dtype == np.float64 and scores.shape == (len(prompts),)
        assert np.all((scores > 0) & (scores < 1))
        assert not np.allclose(scores, scores[0])
        again = self.make_scorer().score(prompts[::-1])
        np.testing.assert_allclose(again, scores[::-1], atol=self.tolerance)

    def test_one_at_a_time_equals_all_at_once(self, scorer):
        prompts = self.prompts()
        together = scorer.score(prompts)
        alone = np.array([self.make_scorer().score([p])[0] for p in prompts])
        np.testing.assert_allclose(together, alone, atol=self.tolerance)

    def test_progress_counts_every_prompt(self, scorer):
        seen: list[int] = []
        scorer.score(self.prompts(), progress=seen.append)
        assert sum(seen) == len(self.prompts())

    def test_an_empty_prompt_is_an_error(self, scorer):
        with pytest.raises(ModelError, match="empty"):
            scorer.score([EncodedPrompt((), ())])
