"""Every registered protocol and backend passes its conformance class (tests/conformance.py)."""

from __future__ import annotations

import importlib.util

import pytest

from llmrec.data.protocols import PROTOCOLS, buildable
from llmrec.llm import BACKENDS, AnswerTokens, ScoringConfig, YesNoScorer
from tests.conformance import ProtocolConformance, ScorerConformance
from tests.tiny_models import tiny_gemma3, tiny_llama

ANSWER = AnswerTokens(yes_id=5, no_id=6, yes_text="Yes", no_text="No")


class TestTallrec(ProtocolConformance):
    protocol = "tallrec"
    settings = {"history_len": 5, "max_samples": 300, "few_shot": [16]}


class TestRella(ProtocolConformance):
    protocol = "rella"


class TestTrsr(ProtocolConformance):
    protocol = "trsr"
    settings = {"min_interactions": 8, "max_interactions": 40, "eval_negatives": 5, "n_test": 6, "n_valid": 5}


class TestTransformersScorerLlama(ScorerConformance):
    backend = "transformers"

    def make_scorer(self):
        return YesNoScorer(tiny_llama(vocab=16), ANSWER, ScoringConfig(batch_size=3))


class TestTransformersScorerGemmaPrefixReuse(ScorerConformance):
    backend = "transformers"

    def make_scorer(self):
        return YesNoScorer(tiny_gemma3(vocab=16), ANSWER, ScoringConfig(batch_size=4, max_candidates_per_pass=2))


class TestTransformersScorerFullHead(ScorerConformance):
    backend = "transformers"

    def make_scorer(self):
        return YesNoScorer(tiny_gemma3(vocab=16), ANSWER, ScoringConfig(batch_size=2, head="full", padding_side="right"))


class TestLlamaCppScorerBookkeeping(ScorerConformance):
    """The llama.cpp scorer over a fake context (prefix bookkeeping); the real one is tested when installed."""

    backend = "llama.cpp"
    tolerance = 1e-9

    def make_scorer(self):
        from llmrec.llm.llamacpp import LlamaCppScorer
        from tests.test_llamacpp_backend import FakeLlama

        return LlamaCppScorer(FakeLlama(n_ctx=256), ANSWER)


class TestVllmScorerStandIn(ScorerConformance):
    """The vLLM scorer over a stand-in engine with vLLM's log-prob semantics; the real one is tested on a GPU."""

    backend = "vllm"

    def make_scorer(self):
        from llmrec.llm.vllm import VllmModel, VllmScorer
        from tests.test_vllm_backend import StandInLLM

        return VllmScorer(VllmModel(StandInLLM(tiny_llama(vocab=16))), ANSWER, batch_size=4)


CONFORMING_BACKENDS = {c.backend for c in ScorerConformance.__subclasses__()}
CONFORMING_PROTOCOLS = {c.protocol for c in ProtocolConformance.__subclasses__()}


def test_every_backend_has_a_conformance_class():
    assert set(BACKENDS) <= CONFORMING_BACKENDS


def test_every_buildable_protocol_has_a_conformance_class():
    assert set(buildable()) <= CONFORMING_PROTOCOLS
    assert set(PROTOCOLS) - set(buildable()) == {"instruction"}  # imported, not built: tested in test_train


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_backend_check_passes_when_installed():
    BACKENDS["llama.cpp"].check(None)
