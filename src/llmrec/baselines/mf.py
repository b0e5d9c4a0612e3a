"""Matrix factorization (MF): the CTR floor whose user and item embeddings CoLLM maps into an LLM's token space.

``P(like) = sigmoid(<user, item> + b_user + b_item + b)``, trained with the shared trainer on the training rows;
its ``user_emb`` / ``item_emb`` tables are what ``collab.run`` of ``llmrec train`` reads (:mod:`llmrec.llm.collab`).

>>> import numpy as np
>>> from types import SimpleNamespace
>>> f = SimpleNamespace(users=SimpleNamespace(size=4), items=SimpleNamespace(size=5))
>>> m = MatrixFactorization(f, embedding_dim=3)
>>> m.scores(SimpleNamespace(user=np.array([1, 2]), item=np.array([3, 4]))).shape
torch.Size([2])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from llmrec.baselines.features import CtrBatch


class MatrixFactorization(nn.Module):
    """Dot product of a user and an item embedding plus biases (rows in the vocabularies' layout)."""

    trainable = True

    def __init__(self, features, embedding_dim: int = 16, init_std: float = 0.01) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(features.users.size, embedding_dim)
        self.item_emb = nn.Embedding(features.items.size, embedding_dim)
        self.user_bias = nn.Embedding(features.users.size, 1)
        self.item_bias = nn.Embedding(features.items.size, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        for emb in (self.user_emb, self.item_emb):
            nn.init.normal_(emb.weight, std=init_std)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)

    def logits(self, batch: CtrBatch) -> torch.Tensor:
        u = torch.as_tensor(np.ascontiguousarray(batch.user), dtype=torch.long)
        i = torch.as_tensor(np.ascontiguousarray(batch.item), dtype=torch.long)
        dot = (self.user_emb(u) * self.item_emb(i)).sum(-1)
        return dot + self.user_bias(u).squeeze(-1) + self.item_bias(i).squeeze(-1) + self.bias

    def scores(self, batch: CtrBatch) -> torch.Tensor:
        return torch.sigmoid(self.logits(batch))

    def loss(self, batch: CtrBatch) -> torch.Tensor:
        target = torch.as_tensor(batch.label, dtype=torch.float32)
        return nn.functional.binary_cross_entropy_with_logits(self.logits(batch), target)
