"""Sequential recommenders for candidate lists: compact torch modules behind one interface.

Every model is a ``torch.nn.Module`` with

* ``scores(batch) -> Tensor (B, C)``: a score per candidate of a :class:`SeqBatch` (higher: rank
  first);
* ``loss(batch)`` on a training batch (``batch.target``), minimised by the shared trainer;
* ``fit_counts(features, instances)`` instead for the popularity floor.

GRU4Rec, SASRec, NARM and Caser encode the history into one vector ``s`` and score item ``i``
by ``s . e_i`` with the item representations ``e`` (tied input/output: id embeddings, or with the config's
``item_text`` a projected frozen text vector, plus the id embedding unless ``with_id`` is off), trained with the full
softmax cross-entropy over all items (RecBole's default ``CE`` loss). NCF (NeuMF) has no
history input: it scores (user, item) pairs and trains with binary cross-entropy on each
positive and ``negatives`` items drawn uniformly (from the torch generator, so a resumed run
draws the same ones).

Histories arrive left-padded with 0 (the oldest item first, the most recent last); the GRUs
and SASRec's causal attention read them moved to the left end, so padding never reaches
the encoding.

>>> import numpy as np
>>> from llmrec.baselines.sequences import SeqBatch
>>> torch.manual_seed(0) and None
>>> m = GRU4Rec(n_items=10, embedding_dim=8, hidden_size=8)
>>> b = SeqBatch(user=np.array([1, 2]), history=np.array([[0, 3, 4], [0, 0, 0]]),
...              candidates=np.array([[5, 6], [7, 8]]))
>>> tuple(m.scores(b).shape)
(2, 2)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from llmrec.baselines.sequences import Instances, SeqBatch, SeqFeatures

__all__ = ["SeqModel", "SeqPopularity", "GRU4Rec", "SASRec", "NARM", "Caser", "NCF"]


def _long(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.long)


class SeqModel(nn.Module):
    """Base class of the sequential models."""

    trainable = True

    def scores(self, batch: SeqBatch) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def loss(self, batch: SeqBatch) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def fit_counts(self, features: SeqFeatures, instances: Instances) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class SeqPopularity(SeqModel):
    """Floor: how often each item occurs in the training sequences (histories and targets)."""

    trainable = False

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(n_items, dtype=torch.float64))

    def fit_counts(self, features: SeqFeatures, instances: Instances) -> None:
        # every item of a sequence but its first is the target of one instance
        firsts = instances.flat_items[np.unique(instances.start)] if len(instances.flat_items) else np.zeros(0, int)
        items = np.concatenate([instances.target, firsts]).astype(np.int64)
        counts = np.bincount(items, minlength=self.count.numel())[: self.count.numel()]
        self.count.copy_(torch.from_numpy(counts.astype(np.float64)))

    def scores(self, batch: SeqBatch) -> torch.Tensor:
        return self.count[_long(batch.candidates)].float()


class NextItemModel(SeqModel):
    """A history encoder ``s = encode(history)`` scored against tied item representations.

    An item's representation is its id embedding; with ``item_vectors`` (an ``(n_items, dim)`` array
    by item index, rows 0 and the unknown item zero: the config's ``item_text``) it is the frozen
    vector through a trainable linear map, ``W v_i``, plus the id embedding when ``with_id``. The
    vectors are a buffer (saved with the weights, never trained), the map's initial scale that of
    the id embeddings; history items and candidates (and the full-softmax output table) use the same
    representation.

    >>> m = GRU4Rec(n_items=4, embedding_dim=8, hidden_size=8, item_vectors=np.eye(4, 3), with_id=False)
    >>> m.item is None, tuple(m.item_table().shape), [n for n, p in m.named_parameters() if "text" in n]
    (True, (4, 8), ['text_proj.weight'])
    """

    def __init__(self, n_items: int, embedding_dim: int, item_vectors: np.ndarray | None = None,
                 with_id: bool = True) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.item: nn.Embedding | None = None
        if with_id or item_vectors is None:
            self.item = nn.Embedding(n_items, embedding_dim, padding_idx=0)
            nn.init.normal_(self.item.weight, std=embedding_dim ** -0.5)
            with torch.no_grad():
                self.item.weight[0].zero_()
        self.text_proj: nn.Linear | None = None
        if item_vectors is not None:
            vectors = torch.as_tensor(np.asarray(item_vectors), dtype=torch.float32)
            if vectors.ndim != 2 or vectors.shape[0] != n_items:
                raise ValueError(f"item_vectors: shape {tuple(vectors.shape)}, not one row per item ({n_items})")
            self.register_buffer("text_vectors", vectors.clone())
            self.text_proj = nn.Linear(vectors.shape[1], embedding_dim, bias=False)
            nn.init.normal_(self.text_proj.weight, std=embedding_dim ** -0.5)

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """Representations of the item indices ``items`` (any shape; padding 0 maps to zeros)."""
        if self.text_proj is None:
            return self.item(items)
        text = self.text_proj(self.text_vectors[items])
        return text if self.item is None else self.item(items) + text

    def item_table(self) -> torch.Tensor:
        """The representation of every item, (n_items, embedding_dim): the output embeddings."""
        if self.text_proj is None:
            return self.item.weight
        text = self.text_proj(self.text_vectors)
        return text if self.item is None else self.item.weight + text

    def encode(self, history: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def scores(self, batch: SeqBatch) -> torch.Tensor:
        s = self.encode(_long(batch.history))
        return (self.embed(_long(batch.candidates)) * s[:, None, :]).sum(-1)

    def loss(self, batch: SeqBatch) -> torch.Tensor:
        s = self.encode(_long(batch.history))
        logits = s @ self.item_table().T
        logits[:, 0] = -torch.inf  # never predict padding
        return nn.functional.cross_entropy(logits, _long(batch.target))


def _right_pad(history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Histories moved to the left end (items first, padding after) and their lengths."""
    L = history.shape[1]
    n = (history > 0).sum(1)
    idx = (torch.arange(L)[None, :] + (L - n)[:, None]) % L
    return torch.gather(history, 1, idx), n


def _run_gru(gru: nn.GRU, x: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A GRU over right-padded inputs ``x`` of lengths ``n`` that never sees the padding: (states
    (B, L, H) with zeros after each sequence, last state (B, H)). An empty history reads one
    padding item."""
    packed = nn.utils.rnn.pack_padded_sequence(x, n.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    out, h = gru(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, h[-1]


class GRU4Rec(NextItemModel):
    """GRU4Rec (Hidasi et al. 2016): a GRU over the item embeddings; its last state is the user."""

    def __init__(self, n_items: int, embedding_dim: int = 64, hidden_size: int = 64, num_layers: int = 1,
                 dropout: float = 0.2, item_vectors: np.ndarray | None = None, with_id: bool = True) -> None:
        super().__init__(n_items, embedding_dim, item_vectors, with_id)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, embedding_dim)

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        items, n = _right_pad(history)
        _, last = _run_gru(self.gru, self.dropout(self.embed(items)), n)
        return self.out(last)


class SASRec(NextItemModel):
    """SASRec (Kang & McAuley 2018): causal self-attention blocks over item + position embeddings;
    the output at the most recent item is the user."""

    def __init__(self, n_items: int, embedding_dim: int = 64, num_blocks: int = 2, num_heads: int = 2,
                 dropout: float = 0.2, max_len: int = 50, item_vectors: np.ndarray | None = None,
                 with_id: bool = True) -> None:
        super().__init__(n_items, embedding_dim, item_vectors, with_id)
        self.position = nn.Embedding(max_len, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(embedding_dim, num_heads, dim_feedforward=embedding_dim, dropout=dropout,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(layer, num_blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embedding_dim)
        self.max_len = max_len

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        history = history[:, -self.max_len:]
        items, n = _right_pad(history)  # causal attention never sees the padding after the items
        L = max(int(n.max()), 1) if len(n) else 1
        items = items[:, :L]  # nothing after the longest history changes an output
        x = self.embed(items) * math.sqrt(self.embedding_dim) + self.position(torch.arange(L))[None]
        mask = torch.triu(torch.full((L, L), -torch.inf), diagonal=1)
        h = self.norm(self.blocks(self.dropout(x), mask=mask, is_causal=True))
        return h[torch.arange(len(items)), (n - 1).clamp(min=0)]


class NARM(NextItemModel):
    """NARM (Li et al. 2017): a GRU's last state (global) and attention over its states (local),
    combined by a bilinear map into the item space."""

    def __init__(self, n_items: int, embedding_dim: int = 64, hidden_size: int = 64, dropout: float = 0.25,
                 item_vectors: np.ndarray | None = None, with_id: bool = True) -> None:
        super().__init__(n_items, embedding_dim, item_vectors, with_id)
        self.emb_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(embedding_dim, hidden_size, batch_first=True)
        self.a1 = nn.Linear(hidden_size, hidden_size, bias=False)
        self.a2 = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)
        self.ct_dropout = nn.Dropout(dropout * 2)
        self.b = nn.Linear(2 * hidden_size, embedding_dim, bias=False)

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        items, n = _right_pad(history)
        h, last = _run_gru(self.gru, self.emb_dropout(self.embed(items)), n)
        mask = (items > 0).unsqueeze(-1).float()
        alpha = self.v(torch.sigmoid(self.a1(last)[:, None, :] + self.a2(h))) * mask
        local = (alpha * h).sum(1)
        return self.b(self.ct_dropout(torch.cat([local, last], dim=-1)))


class Caser(NextItemModel):
    """Caser (Tang & Wang 2018): horizontal and vertical convolutions over the embeddings of the
    ``L`` most recent items. No user embedding: TRSR's test users are not in training."""

    def __init__(self, n_items: int, embedding_dim: int = 64, window: int = 5, n_h: int = 16, n_v: int = 4,
                 dropout: float = 0.4, item_vectors: np.ndarray | None = None, with_id: bool = True) -> None:
        super().__init__(n_items, embedding_dim, item_vectors, with_id)
        self.window = window
        self.horizontal = nn.ModuleList(nn.Conv2d(1, n_h, (h, embedding_dim)) for h in range(1, window + 1))
        self.vertical = nn.Conv2d(1, n_v, (window, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(n_h * window + n_v * embedding_dim, embedding_dim)

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        history = history[:, -self.window:]
        if history.shape[1] < self.window:
            history = nn.functional.pad(history, (self.window - history.shape[1], 0))
        e = self.embed(history).unsqueeze(1)  # (B, 1, L, d)
        out_v = self.vertical(e).flatten(1)
        out_h = [nn.functional.relu(conv(e).squeeze(3)).amax(dim=2) for conv in self.horizontal]
        z = torch.cat([out_v, *out_h], dim=1)
        return nn.functional.relu(self.fc(self.dropout(z)))


class NCF(SeqModel):
    """NCF / NeuMF (He et al. 2017): generalized matrix factorization and an MLP over user and item
    embeddings; BCE on each positive and ``negatives`` uniformly drawn items."""

    def __init__(self, n_items: int, n_users: int, embedding_dim: int = 32, mlp_hidden: tuple[int, ...] = (64, 32),
                 negatives: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_items, self.negatives = n_items, negatives
        self.user_gmf = nn.Embedding(n_users, embedding_dim)
        self.item_gmf = nn.Embedding(n_items, embedding_dim, padding_idx=0)
        self.user_mlp = nn.Embedding(n_users, embedding_dim)
        self.item_mlp = nn.Embedding(n_items, embedding_dim, padding_idx=0)
        for emb in (self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp):
            nn.init.normal_(emb.weight, std=0.01)
        layers: list[nn.Module] = []
        width = 2 * embedding_dim
        for size in mlp_hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(embedding_dim + width, 1)

    def logits(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B,) users x (B, C) items -> (B, C) logits."""
        u = user[:, None].expand_as(items)
        gmf = self.user_gmf(u) * self.item_gmf(items)
        mlp = self.mlp(torch.cat([self.user_mlp(u), self.item_mlp(items)], dim=-1))
        return self.head(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    def scores(self, batch: SeqBatch) -> torch.Tensor:
        return self.logits(_long(batch.user), _long(batch.candidates))

    def loss(self, batch: SeqBatch) -> torch.Tensor:
        pos = _long(batch.target)[:, None]
        neg = torch.randint(1, self.n_items - 1, (len(pos), self.negatives))  # not padding, not unknown
        items = torch.cat([pos, neg], dim=1)
        labels = torch.zeros(items.shape, dtype=torch.float32)
        labels[:, 0] = 1.0
        return nn.functional.binary_cross_entropy_with_logits(self.logits(_long(batch.user), items), labels)
