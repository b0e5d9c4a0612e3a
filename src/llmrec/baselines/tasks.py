"""The two kinds of baseline task the shared trainer runs, and batched scoring for each.

* :class:`CtrTask`: labelled samples (TALLRec, ReLLa); probabilities; AUC or LogLoss on
  validation.
* :class:`RankingTask`: candidate lists (TRSR); training instances (next-item, or (user,
  item) pairs for NCF); a ranking metric (``recall@k``, ``mrr@k``, ``ndcg@k``, ``hit@k``) on
  validation lists.

>>> metric_by_name("mrr@3", np.array([[0, 1, 0]]), np.array([[0.9, 0.8, 0.1]]))
0.5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from llmrec.baselines.features import CtrFeatures, CtrSplit
from llmrec.baselines.sequences import Instances, SeqFeatures, SeqSplit
from llmrec.metrics import RANKING_METRICS, metric_by_name

__all__ = ["CtrTask", "RankingTask", "predict", "predict_ranking", "RANKING_METRICS"]


def predict(model: torch.nn.Module, features: CtrFeatures, split: CtrSplit, batch_size: int = 4096) -> np.ndarray:
    """Probabilities for every row of a CTR split (evaluation mode, no gradients)."""
    return _predict(model, lambda rows: features.batch(split, rows), len(split), batch_size)


def predict_ranking(model: torch.nn.Module, features: SeqFeatures, split: SeqSplit,
                    batch_size: int = 1024) -> np.ndarray:
    """(n, C) scores of every candidate of every list of a ranking split."""
    out = _predict(model, lambda rows: features.batch(split, rows), len(split), batch_size)
    return out.reshape(len(split), -1) if len(split) else np.zeros((0, split.candidates.shape[1]))


def _predict(model: torch.nn.Module, batch, n: int, batch_size: int) -> np.ndarray:
    was = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            out.append(model.scores(batch(np.arange(start, min(start + batch_size, n)))).double().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class CtrTask:
    """Labelled samples: train on ``train``, validate on ``valid``."""

    features: CtrFeatures
    train: CtrSplit
    valid: CtrSplit
    metric: str = "auc"

    def __len__(self) -> int:
        return len(self.train)

    def batch(self, rows: np.ndarray):
        return self.features.batch(self.train, rows)

    def validate(self, model: torch.nn.Module) -> float:
        return metric_by_name(self.metric, self.valid.label, predict(model, self.features, self.valid))

    def fit_counts(self, model) -> None:
        model.fit_counts(self.features, self.train)

    def fit_inputs(self, model) -> None:
        model.fit_inputs(self.features, self.train)


@dataclass
class RankingTask:
    """Candidate lists: train on ``instances``, validate on the lists of ``valid``."""

    features: SeqFeatures
    instances: Instances
    valid: SeqSplit
    metric: str = "ndcg@10"

    def __len__(self) -> int:
        return len(self.instances)

    def batch(self, rows: np.ndarray):
        return self.features.train_batch(self.instances, rows)

    def validate(self, model: torch.nn.Module) -> float:
        return metric_by_name(self.metric, self.valid.labels, predict_ranking(model, self.features, self.valid))

    def fit_counts(self, model) -> None:
        model.fit_counts(self.features, self.instances)

    def fit_inputs(self, model) -> None:
        model.fit_inputs(self.features, self.instances)
