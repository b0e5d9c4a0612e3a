"""A learnable recommender task end to end through the CLI: LoRA tuning must beat zero-shot and chance.

The data plant one rule: ten genres, each movie one of them (its title ends with the genre's name); every user likes
the movies of five genres (rating 4-5) and dislikes the other five (rating 1-2). A small random Llama (64 wide, two
layers) saved as a model folder is scored zero-shot, tuned with LoRA on 160 samples (3 epochs, lr 1e-2, every linear
layer) and scored again, each step a command (``llmrec data prepare`` -> ``llmrec evaluate`` -> ``llmrec train`` ->
``llmrec evaluate --adapter``); the logistic-regression floor (``llmrec baseline logreg``) runs on the same folder.

A short template (the history lists, then the target title last) is used: through TALLRec's template, where the
title is followed by ``"?``, a blank line and ``### Response:``, a 32-wide model needed ~100 steps to find the title
(measured: AUC .91 after 96 steps), too slow for a unit test; what is tested here is the training path (examples,
answer-only loss, LoRA, selection, adapter, scoring), not the model.

Measured test AUC (200 test samples), with the seed of data, model and run set to 0-5 (5 epochs; validation AUC
reached 1.0 by step 20-40 of 100 in every seed, so the test's 3 epochs = 60 steps suffice: seed 3 at 3 epochs gave
the same .471 -> 1.000, seed 2 .834 -> 1.000):

====  =========  =====  =======
seed  zero-shot  tuned  logreg
====  =========  =====  =======
0     .453       .999   1.000
1     .059       1.000  1.000
2     .834       1.000  1.000
3     .471       1.000  1.000
4     .636       1.000  1.000
5     .233       1.000  1.000
====  =========  =====  =======

The test (seed 3) asks for a tuned AUC of at least .9 (chance + .4) and .1 above zero-shot: every seed clears both
(smallest: .999, and +.166 where the random model happened to score .834 zero-shot). A random model's zero-shot
score is a random function of the target's genre token, so its AUC spreads widely around .5 (.059-.834 above): the
margin over zero-shot is kept small and the bound on the tuned AUC carries the test. With the 32-wide model of
tests/tiny_models.py at lr 2e-2 three seeds of six stayed below .75: do not shrink the model or the steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from llmrec.cli import main
from tests.conftest import write_ml1m_zip

GENRES = ["Comedy", "Drama", "Romance", "Music", "Family", "Horror", "War", "Crime", "Thriller", "Western"]
LIKED = set(GENRES[:5])
WORDS = ["Red", "Blue", "Green", "Gold", "Night", "Day", "Sea", "Sky", "Star", "Moon", "Rain", "Fire", "Ice", "Wind",
         "Road", "City", "King", "Queen", "War", "Love"]
SHORT_TEMPLATE = """\
name: short_movie
description: liked and disliked history titles, then the target title last
protocols: [tallrec]
answer: {"yes": "Yes", "no": "No"}
context: |
  Liked: {{ history | selectattr("liked") | map(attribute="title") | join(", ") }}
  Disliked: {{ history | rejectattr("liked") | map(attribute="title") | join(", ") }}
candidate: |
  Target movie: {{ target.title }}
"""
SEED = 3
HIDDEN = 64
MIN_TUNED_AUC = 0.9  # chance + .4
MIN_GAIN_OVER_ZERO_SHOT = 0.1
MIN_LOGREG_AUC = 0.9  # item ids determine the label: the floor learns the rule outright


def planted_genre_ratings(seed: int, n_users: int = 40, per_user: int = 30) -> tuple[list[tuple], list[tuple]]:
    """Ratings and movies of the planted rule (module docstring): 80 movies, title "<word> <genre>"."""
    rng = np.random.default_rng(seed)
    movies = [(m, f"{WORDS[m % 20]} {GENRES[m % 10]}", GENRES[m % 10]) for m in range(1, 81)]
    rows = []
    for u in range(1, n_users + 1):
        for t, m in enumerate(rng.choice(np.arange(1, 81), size=per_user, replace=False)):
            liked = GENRES[m % 10] in LIKED
            rows.append((u, int(m), int(rng.integers(4, 6)) if liked else int(rng.integers(1, 3)), 1_000_000 + 1000 * t + u))
    return rows, movies


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _auc(run: Path) -> float:
    return json.loads((run / "metrics.json").read_text())["metrics"]["auc"]


def test_lora_tuning_learns_a_planted_rule_through_the_cli(tmp_path):
    """prepare -> evaluate (zero-shot) -> train -> evaluate (tuned) -> baseline, each through the CLI: the tuned
    model's test AUC is at least .9 and .1 above zero-shot, the tuned evaluation reproduces the run's test pass,
    and the logistic-regression floor learns the rule too (margins in the module docstring).

    Mutation: ``yes if int(row["sample_id"]) % 2 == 1 else no`` for the target in ``ctr_examples``
    (src/llmrec/train/examples.py; answers not of their rows): tuned .675 against zero-shot .471. Mutation: the
    yes/no answers swapped there: selection keeps the untrained adapter, tuned = zero-shot = .471.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer(" ".join(GENRES + WORDS))
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=1024, pad_token_id=0, bos_token_id=1, eos_token_id=2))
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    rows, movies = planted_genre_ratings(SEED)
    zip_path = write_ml1m_zip(tmp_path / "ml-1m.zip", rows, movies)
    (tmp_path / "short.yaml").write_text(SHORT_TEMPLATE)
    data, tpl, mdl = str(tmp_path / "data"), str(tmp_path / "short.yaml"), str(tmp_path / "model")

    _cli("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(zip_path), "-o", data,
         "--set", "tallrec.history_len=3")
    common = ["-d", data, "-m", mdl, "-t", tpl, "--limit", "200", "--device", "cpu"]
    _cli("evaluate", *common, "--run-dir", str(tmp_path / "zero-shot"))
    _cli("train", "-d", data, "-m", mdl, "--shots", "160", "--seed", str(SEED), "--epochs", "3", "--lr", "1e-2",
         "--device", "cpu", "--run-dir", str(tmp_path / "lora"), "--set", f"template={tpl}",
         "--set", "lora.target_modules=[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]",
         "--set", "selection.limit=60", "--set", "test.limit=200")
    _cli("evaluate", *common, "-a", str(tmp_path / "lora"), "--run-dir", str(tmp_path / "tuned"))
    _cli("baseline", "logreg", "-d", data, "--seed", str(SEED), "--run-dir", str(tmp_path / "logreg"),
         "--set", "test.limit=200")

    zero, tuned, logreg = _auc(tmp_path / "zero-shot"), _auc(tmp_path / "tuned"), _auc(tmp_path / "logreg")
    assert _auc(tmp_path / "lora" / "test") == pytest.approx(tuned, abs=1e-6)  # the same samples, the same adapter
    assert tuned >= MIN_TUNED_AUC and tuned >= zero + MIN_GAIN_OVER_ZERO_SHOT, (zero, tuned)
    assert logreg >= MIN_LOGREG_AUC, logreg
