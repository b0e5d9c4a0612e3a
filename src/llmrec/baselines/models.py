"""Classic CTR models behind one small interface, and the registry that names every baseline
(the sequential ones live in :mod:`llmrec.baselines.sequential`).

Every model is a ``torch.nn.Module`` with

* ``scores(batch) -> Tensor`` of probabilities, one per sample of a :class:`CtrBatch`;
* ``loss(batch) -> Tensor`` (trainable models), minimised by the shared trainer;
* ``fit_counts(features, split)`` instead, for the counting floors (popularity, user mean, history rate and mean);
* optionally ``fit_inputs(features, split)``: statistics of the training rows' inputs (standardization), which
  the shared trainer fits before the first step;

so the trainer, the run folder and the conformance tests treat them alike. DIN, DIEN, DCNv2
and SIM are FuxiCTR's implementations (``model_zoo.LongCTR``; ``pip install
"llmrec[baselines]"``), fed our arrays directly; the floors are a few lines of torch here.

>>> sorted(n for n, s in BASELINES.items() if s.kind == "ctr")[:5]
['dcnv2', 'dien', 'din', 'history_mean', 'history_rate']
>>> BASELINES["logreg_history"].history_stats
True
>>> BASELINES["sim"].library, BASELINES["popularity"].trainable
('fuxictr', False)

A spec carries the model's tuned defaults: ``defaults`` (its ``params``) and ``train`` (the shared trainer's
settings), which a config starts from where it sets none:

>>> BASELINES["sasrec"].train
{'epochs': 30, 'batch_size': 256, 'learning_rate': 0.001, 'patience': 3}
>>> BASELINES["din"].defaults["dnn_hidden_units"], BASELINES["din"].train
([200, 80], {})
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from llmrec.baselines.features import HISTORY_STATS, CtrBatch, CtrFeatures, CtrSplit
from llmrec.baselines.mf import MatrixFactorization
from llmrec.baselines.sequences import SeqFeatures
from llmrec.baselines.sequential import NARM, NCF, Caser, GRU4Rec, NextItemModel, SASRec, SeqPopularity
from llmrec.errors import ConfigError
from llmrec.registry import Registry

__all__ = ["BASELINES", "BaselineSpec", "build_model", "CtrModel", "register_baseline"]


class CtrModel(nn.Module):
    """Base class: probabilities for a batch; ``trainable`` models also give a loss."""

    trainable = True

    def scores(self, batch: CtrBatch) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def loss(self, batch: CtrBatch) -> torch.Tensor:
        p = self.scores(batch).clamp(1e-7, 1 - 1e-7)
        return nn.functional.binary_cross_entropy(p, torch.as_tensor(batch.label, dtype=torch.float32))

    def fit_counts(self, features: CtrFeatures, split: CtrSplit) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _long(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.long)


# ---------------------------------------------------------------- floors

class SmoothedRate(CtrModel):
    """Positive rate of a key (item or user) in the training rows, shrunk toward the global rate:
    ``(positives + m * global) / (count + m)``; unseen keys get the global rate."""

    trainable = False

    def __init__(self, features: CtrFeatures, key: str, m: float = 10.0) -> None:
        super().__init__()
        self.key, self.m = key, float(m)
        size = features.items.size if key == "item" else features.users.size
        self.register_buffer("rate", torch.zeros(size, dtype=torch.float64))

    def fit_counts(self, features: CtrFeatures, split: CtrSplit) -> None:
        keys = split.item if self.key == "item" else split.user
        size = self.rate.numel()
        count = np.bincount(keys, minlength=size).astype(np.float64)
        pos = np.bincount(keys, weights=split.label.astype(np.float64), minlength=size)
        prior = float(split.label.mean()) if len(split) else 0.5
        self.rate.copy_(torch.from_numpy((pos + self.m * prior) / (count + self.m)))

    def scores(self, batch: CtrBatch) -> torch.Tensor:
        keys = batch.item if self.key == "item" else batch.user
        return self.rate[_long(keys)].float()


class HistoryRate(CtrModel):
    """Share of liked items (rating above the folder's label threshold) among the sample's own
    ``history_len`` most recent history items, shrunk toward the training positive rate:
    ``(liked + m * global) / (shown + m)``. No training labels but the global rate: the signal that a
    prompt's liked / disliked lists carry, counted.

    >>> import numpy as np
    >>> from llmrec.baselines.features import Vocab
    >>> f = type("F", (), {"ratings": Vocab(["1.0", "3.0", "4.0", "5.0"]), "label_threshold": 3.0})()
    >>> m = HistoryRate(f, m=0.0)
    >>> b = type("B", (), {"history_rating": np.array([[0, 1, 3, 4], [2, 2, 2, 3]])})()
    >>> [round(x, 3) for x in m.scores(b).tolist()]  # 2 of 3 shown liked; 1 of 4
    [0.667, 0.25]
    """

    trainable = False

    def __init__(self, features: CtrFeatures, m: float = 1.0) -> None:
        super().__init__()
        if features.label_threshold is None:
            raise ConfigError("history_rate needs the prepared folder's label_threshold (the 'liked' cut of its "
                              "protocol); this folder has none")
        self.m = float(m)
        levels = [float(v) for v in features.ratings.values]
        liked = torch.zeros(features.ratings.size, dtype=torch.float64)
        shown = torch.zeros(features.ratings.size, dtype=torch.float64)
        liked[1 : 1 + len(levels)] = torch.tensor([float(v > features.label_threshold) for v in levels],
                                                  dtype=torch.float64)
        shown[1 : 1 + len(levels)] = 1.0  # 0: padding or no rating; the last index: an unknown level
        self.register_buffer("liked", liked)
        self.register_buffer("shown", shown)
        self.register_buffer("prior", torch.tensor(0.5, dtype=torch.float64))

    def fit_counts(self, features: CtrFeatures, split: CtrSplit) -> None:
        self.prior.fill_(float(split.label.mean()) if len(split) else 0.5)

    def scores(self, batch: CtrBatch) -> torch.Tensor:
        levels = _long(batch.history_rating)
        liked, shown = self.liked[levels].sum(1), self.shown[levels].sum(1)
        return ((liked + self.m * self.prior) / (shown + self.m).clamp_min(1e-12)).float()


class HistoryMean(CtrModel):
    """Mean rating of the sample's own ``history_len`` most recent history items, shrunk toward the mean
    history rating of the training rows (``(sum + m * global) / (shown + m)``), and turned into a probability by
    a two-parameter logistic fit on the training rows (``sigmoid(a + b * (mean - global))``, Newton steps with a
    small ridge). Where ``history_rate`` counts liked items, this reads the stars themselves: a 3-star and a
    1-star dislike differ.

    >>> import numpy as np
    >>> from llmrec.baselines.features import Vocab
    >>> f = type("F", (), {"ratings": Vocab(["1.0", "3.0", "4.0", "5.0"])})()
    >>> m = HistoryMean(f, m=0.0)
    >>> b = type("B", (), {"history_rating": np.array([[0, 1, 3, 4], [2, 2, 2, 3]])})()
    >>> [round(x, 3) for x in m.mean_rating(b).tolist()]  # (1 + 4 + 5) / 3; (3 + 3 + 3 + 4) / 4
    [3.333, 3.25]
    """

    trainable = False

    def __init__(self, features: CtrFeatures, m: float = 1.0, ridge: float = 1e-3) -> None:
        super().__init__()
        self.m, self.ridge = float(m), float(ridge)
        levels = [float(v) for v in features.ratings.values]
        value = torch.zeros(features.ratings.size, dtype=torch.float64)
        shown = torch.zeros(features.ratings.size, dtype=torch.float64)
        value[1 : 1 + len(levels)] = torch.tensor(levels, dtype=torch.float64)
        shown[1 : 1 + len(levels)] = 1.0  # 0: padding or no rating; the last index: an unknown level
        self.register_buffer("value", value)
        self.register_buffer("shown", shown)
        # the training rows' mean history rating, and the calibration's intercept and slope
        self.register_buffer("centre", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("coef", torch.tensor([0.0, 1.0], dtype=torch.float64))

    def mean_rating(self, batch: CtrBatch) -> torch.Tensor:
        levels = _long(batch.history_rating)
        total, shown = self.value[levels].sum(1), self.shown[levels].sum(1)
        return (total + self.m * self.centre) / (shown + self.m).clamp_min(1e-12)

    def fit_counts(self, features: CtrFeatures, split: CtrSplit) -> None:
        if not len(split):
            return
        batch = features.batch(split, np.arange(len(split)))
        levels = _long(batch.history_rating)
        shown = self.shown[levels].sum()
        self.centre.fill_(float(self.value[levels].sum() / shown) if shown > 0 else 0.0)
        x = (self.mean_rating(batch) - self.centre).numpy()
        self.coef.copy_(torch.from_numpy(_logistic_fit(x, split.label.astype(np.float64), self.ridge)))

    def scores(self, batch: CtrBatch) -> torch.Tensor:
        z = self.coef[0] + self.coef[1] * (self.mean_rating(batch) - self.centre)
        return torch.sigmoid(z).float()


def _logistic_fit(x: np.ndarray, y: np.ndarray, ridge: float, steps: int = 50) -> np.ndarray:
    """Intercept and slope of a one-feature logistic regression (Newton's method; ``ridge`` on both).

    >>> x, y = np.array([-1.0, -1.0, 1.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0, 1.0, 0.0])
    >>> _logistic_fit(x, y, 1e-9).round(3).tolist()  # a - b = logit(1/2), a + b = logit(2/3) = ln 2
    [0.347, 0.347]
    """
    X = np.c_[np.ones_like(x), x]
    w = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(X @ w)))
        grad = X.T @ (p - y) + ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


class LogisticRegression(CtrModel):
    """Logistic regression on one-hot user and item ids and the multi-hot categories of the item
    (every genre of a movie; one weight per id)."""

    def __init__(self, features: CtrFeatures) -> None:
        super().__init__()
        self.user = nn.Embedding(features.users.size, 1, padding_idx=0)
        self.item = nn.Embedding(features.items.size, 1, padding_idx=0)
        self.category = nn.Embedding(features.categories.size, 1, padding_idx=0)
        self.bias = nn.Parameter(torch.zeros(1))
        for emb in (self.user, self.item, self.category):
            nn.init.zeros_(emb.weight)

    def logits(self, batch: CtrBatch) -> torch.Tensor:
        genres = batch.genres if batch.genres is not None else batch.category[:, None]
        return (self.user(_long(batch.user)) + self.item(_long(batch.item))).squeeze(-1) \
            + self.category(_long(genres)).squeeze(-1).sum(1) + self.bias

    def scores(self, batch: CtrBatch) -> torch.Tensor:
        return torch.sigmoid(self.logits(batch))

    def loss(self, batch: CtrBatch) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self.logits(batch),
                                                              torch.as_tensor(batch.label, dtype=torch.float32))


class HistoryLogisticRegression(LogisticRegression):
    """The logistic regression of ``logreg`` plus one weight per value of each user profile field and of the
    folder's other user / item attributes (``CtrFeatures.attributes``), and a weight per standardized history
    feature (:data:`~llmrec.baselines.features.HISTORY_STATS`: log(1 + history length), mean rating, positive
    rate, mean of the last 10 ratings, mean rating of the earlier items sharing a category with the target, and
    the indicator that none does), from each sample's own earlier ratings only. The five history features are
    standardized with the mean and standard deviation of the training rows (:meth:`fit_inputs`); a feature with
    no value (no rated history) is the training mean.
    """

    def __init__(self, features: CtrFeatures) -> None:
        super().__init__(features)
        if not features.history_stats:
            raise ConfigError("logreg_history reads history features: build its CtrFeatures with history_stats=True")
        if features.label_threshold is None:
            raise ConfigError("logreg_history needs the prepared folder's label_threshold (the 'liked' cut of its "
                              "protocol); this folder has none")
        self.fields = [*features.profile_vocabs, *features.attributes]
        sizes = {**{k: v.size for k, v in features.profile_vocabs.items()},
                 **{k: v.size for k, (v, _) in features.attributes.items()}}
        self.field = nn.ModuleList(nn.Embedding(sizes[name], 1, padding_idx=0) for name in self.fields)
        for emb in self.field:
            nn.init.zeros_(emb.weight)
        width = len(HISTORY_STATS)
        self.history = nn.Linear(width, 1, bias=False)
        nn.init.zeros_(self.history.weight)
        self.register_buffer("stats_mean", torch.zeros(width, dtype=torch.float64))
        self.register_buffer("stats_std", torch.ones(width, dtype=torch.float64))

    def fit_inputs(self, features: CtrFeatures, split: CtrSplit) -> None:
        """Mean and standard deviation of the training rows' history features (the indicator stays 0 / 1)."""
        if split.stats is None:
            raise ConfigError("logreg_history: the training split has no history features")
        raw = split.stats[:, :5]
        mean = np.nan_to_num(np.nanmean(raw, axis=0)) if len(raw) else np.zeros(5)
        std = np.nan_to_num(np.nanstd(raw, axis=0)) if len(raw) else np.ones(5)
        self.stats_mean[:5] = torch.from_numpy(mean)
        self.stats_std[:5] = torch.from_numpy(np.where(std > 1e-12, std, 1.0))

    def standardized(self, stats: np.ndarray) -> torch.Tensor:
        x = (torch.as_tensor(stats, dtype=torch.float64) - self.stats_mean) / self.stats_std
        return torch.nan_to_num(x, nan=0.0).float()

    def logits(self, batch: CtrBatch) -> torch.Tensor:
        if batch.history_stats is None:
            raise ConfigError("logreg_history: the batch has no history features")
        out = super().logits(batch) + self.history(self.standardized(batch.history_stats)).squeeze(-1)
        attributes = batch.attributes or {}
        for name, emb in zip(self.fields, self.field):
            ids = batch.profile[name] if name in batch.profile else attributes[name]
            out = out + emb(_long(ids)).squeeze(-1)
        return out


# ---------------------------------------------------------------- FuxiCTR models

def _fuxictr_class(name: str):
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            module = __import__(f"model_zoo.LongCTR.{name}.{name}", fromlist=[name])
    except ImportError as exc:
        raise ConfigError(f"baseline {name.lower()!r} needs FuxiCTR: pip install \"llmrec[baselines]\" "
                          f"({type(exc).__name__}: {exc})") from None
    return getattr(module, name)


# the files of FuxiCTR's pretrained-embedding feature, written in the feature map's data folder
PRETRAINED_VECTORS, PRETRAINED_VOCAB = "item_text.npz", "feature_vocab.json"


def feature_map(features: CtrFeatures, embedding_dim: int, data_dir: str | None = None):
    """A FuxiCTR ``FeatureMap`` for our arrays: user-side categorical fields in the batch, and
    per item (history and target) its id, category and rating level (always 0 for the target).

    With ``features.item_text`` each item also has ``item_text``: FuxiCTR's pretrained-embedding
    feature (``pretrained_emb``, ``freeze_emb: true``, ``pretrain_usage: init``), the frozen vector
    of the item index through a trainable linear map to ``embedding_dim`` (FuxiCTR adds none when
    the two sizes are equal); without ``with_id`` the id feature is left out. Its files (the vectors
    keyed by item index, the vocabulary) are written into ``data_dir``, where the model's constructor
    reads them."""
    from fuxictr.features import FeatureMap

    text = features.item_text
    if text is not None and data_dir is None:
        raise ValueError("feature_map: item_text vectors need a data_dir for FuxiCTR's pretrained-embedding files")
    fmap = FeatureMap("llmrec", data_dir=data_dir or tempfile.gettempdir())
    specs: OrderedDict[str, dict[str, Any]] = OrderedDict()
    specs["user_id"] = {"type": "categorical", "source": "user", "vocab_size": features.users.size, "padding_idx": 0}
    for name, vocab in features.profile_vocabs.items():
        specs[f"user_{name}"] = {"type": "categorical", "source": "user", "vocab_size": vocab.size, "padding_idx": 0}
    if text is None or text.with_id:
        specs["item_id"] = {"type": "categorical", "source": "item", "vocab_size": features.items.size,
                            "padding_idx": 0}
    specs["item_category"] = {"type": "categorical", "source": "item", "vocab_size": features.categories.size,
                              "padding_idx": 0}
    specs["item_rating"] = {"type": "categorical", "source": "item", "vocab_size": features.ratings.size,
                            "padding_idx": 0}
    if text is not None:
        specs["item_text"] = {"type": "categorical", "source": "item", "vocab_size": features.items.size,
                              "padding_idx": 0, "oov_idx": features.items.unknown, "pretrained_emb": PRETRAINED_VECTORS,
                              "pretrain_dim": text.dim, "pretrain_usage": "init", "freeze_emb": True}
        _write_pretrained(Path(data_dir), text.vectors)
    fmap.features = specs
    fmap.labels = ["label"]
    fmap.default_emb_dim = embedding_dim
    fmap.num_fields = fmap.get_num_fields()
    fmap.set_column_index()
    return fmap


def _write_pretrained(folder: Path, vectors: np.ndarray) -> None:
    """FuxiCTR's pretrained-embedding inputs: the vector of every item index but padding (keys: the indices as text)
    and the feature's vocabulary (index text -> index)."""
    keys = [str(i) for i in range(1, len(vectors))]
    np.savez(folder / PRETRAINED_VECTORS, key=np.array(keys), value=np.asarray(vectors[1:], dtype=np.float32))
    vocab = {k: int(k) for k in keys}
    # FuxiCTR takes the key type from the file's second feature: the item ids' vocabulary stands there too
    (folder / PRETRAINED_VOCAB).write_text(json.dumps({"item_text": vocab, "item_id": vocab}))


def _init_defaults(cls) -> dict[str, Any]:
    """Named constructor arguments of ``cls`` and its bases (FuxiCTR passes ``**kwargs`` up) with their
    defaults (``inspect.Parameter.empty`` for none); the most derived class wins."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        if klass is nn.Module or klass is object or "__init__" not in vars(klass):
            continue
        for n, prm in inspect.signature(klass.__init__).parameters.items():
            if n != "self" and prm.kind not in (prm.VAR_KEYWORD, prm.VAR_POSITIONAL):
                found.setdefault(n, prm.default)
    return found


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` can stand where the constructor's ``default`` stands: numbers for a number, text for
    text, a list for a list; a list also where a number or text goes (FuxiCTR takes one dropout or activation per
    layer), 0 / 1 for a bool; no default or a None default accepts anything.

    >>> _same_kind(0.1, 0), _same_kind("abc", 10), _same_kind([64], [200, 80]), _same_kind([0.1, 0.2], 0)
    (True, False, True, True)
    >>> _same_kind(1, True), _same_kind("yes", True), _same_kind(3, "relu"), _same_kind(3, None)
    (True, False, False, True)
    """
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
    if isinstance(value, (list, tuple)):
        return isinstance(default, (list, tuple, int, float, str))
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return False
    if isinstance(default, str):
        return isinstance(value, str) or value is None
    return True


# arguments of FuxiCTR's own training loop, which llmrec does not use (the shared trainer does)
TRAINER_ARGUMENTS = {"learning_rate", "monitor", "monitor_mode", "early_stop_patience", "eval_steps", "save_best_only",
                     "reduce_lr_on_plateau", "accumulation_steps", "model_id", "task"}
# arguments llmrec fills in itself
BUILT_ARGUMENTS = {"feature_map", "features", "key", "class_name", "n_items", "n_users", "item_vectors", "with_id"}


def _check_arguments(cls, params: dict[str, Any], what: str) -> None:
    owned = sorted(set(params) & TRAINER_ARGUMENTS)
    if owned:
        raise ConfigError(f"params: {', '.join(owned)} belong to the training loop; set train.* instead "
                          "(train.learning_rate, train.patience, train.eval_every)")
    defaults = _init_defaults(cls)
    allowed = set(defaults) - TRAINER_ARGUMENTS - BUILT_ARGUMENTS
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"params: {', '.join(unknown)} not an argument of {what} "
                          f"(known: {', '.join(sorted(allowed)) or 'none'})")
    for name, value in params.items():
        if not _same_kind(value, defaults[name]):
            raise ConfigError(f"params.{name}: {value!r} is not the kind of value {what} takes "
                              f"(its default: {defaults[name]!r})")


def right_aligned(batch: CtrBatch) -> CtrBatch:
    """The batch with each history moved to the left end (padding after the items, oldest first).

    >>> import numpy as np
    >>> b = CtrBatch(np.zeros(2, int), np.zeros(2, int), np.zeros(2, int), {}, np.array([[0, 0, 7, 8], [0, 0, 0, 0]]),
    ...              np.zeros((2, 4), int), np.zeros((2, 4), int), np.zeros(2))
    >>> right_aligned(b).history.tolist()
    [[7, 8, 0, 0], [0, 0, 0, 0]]
    """
    L = batch.history.shape[1]
    n = (batch.history > 0).sum(axis=1)
    idx = (np.arange(L)[None, :] + (L - n)[:, None]) % L

    def roll(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, idx, axis=1)

    return CtrBatch(batch.user, batch.item, batch.category, batch.profile, roll(batch.history),
                    roll(batch.history_category), roll(batch.history_rating), batch.label, batch.genres)


class FuxiCtrModel(CtrModel):
    """One of FuxiCTR's LongCTR models (DIN, DIEN, DCNv2, SIM) on our batches."""

    def __init__(self, features: CtrFeatures, class_name: str, params: dict[str, Any], padding: str = "pre") -> None:
        super().__init__()
        self.padding = padding
        cls = _fuxictr_class(class_name)
        params = dict(params)
        _check_arguments(cls, params, f"FuxiCTR's {class_name}")
        emb = int(params.pop("embedding_dim", 16))
        self.profile_fields = list(features.profile_vocabs)
        self.item_text = features.item_text is not None
        self.with_id = features.item_text is None or features.item_text.with_id
        kwargs = {"gpu": -1, "verbose": 0, "model_root": tempfile.gettempdir(), "metrics": ["AUC"],
                  "optimizer": "adam", "loss": "binary_crossentropy", "embedding_dim": emb, **params}
        logging.getLogger().disabled, was = True, logging.getLogger().disabled
        try:
            with tempfile.TemporaryDirectory(prefix="llmrec-fuxictr-") as folder:  # the pretrained-embedding files
                self.net = cls(feature_map(features, emb, folder), **kwargs)
        except TypeError as exc:
            raise ConfigError(f"params: {exc}") from None
        finally:
            logging.getLogger().disabled = was
        self.net.optimizer = None  # the shared trainer owns the optimizer

    def _inputs(self, batch: CtrBatch):
        if self.padding == "post":
            batch = right_aligned(batch)
        batch_dict = {"user_id": _long(batch.user), "label": torch.as_tensor(batch.label, dtype=torch.float32)}
        for name in self.profile_fields:
            batch_dict[f"user_{name}"] = _long(batch.profile[name])
        items = np.concatenate([batch.history, batch.item[:, None]], axis=1)
        cats = np.concatenate([batch.history_category, batch.category[:, None]], axis=1)
        ratings = np.concatenate([batch.history_rating, np.zeros((len(batch), 1), dtype=np.int64)], axis=1)
        item_dict = {"item_id": _long(items.reshape(-1))} if self.with_id else {}
        item_dict.update(item_category=_long(cats.reshape(-1)), item_rating=_long(ratings.reshape(-1)))
        if self.item_text:
            item_dict["item_text"] = _long(items.reshape(-1))
        mask = torch.as_tensor(batch.history > 0, dtype=torch.float32)
        return batch_dict, item_dict, mask

    def _forward(self, batch: CtrBatch) -> dict[str, torch.Tensor]:
        if batch.history.shape[1] == 0:
            raise ConfigError("FuxiCTR models need history_len >= 1")
        return self.net.forward(self._inputs(batch))

    def scores(self, batch: CtrBatch) -> torch.Tensor:
        return self._forward(batch)["y_pred"].reshape(-1)

    def loss(self, batch: CtrBatch) -> torch.Tensor:
        out = self._forward(batch)
        return self.net.compute_loss(out, torch.as_tensor(batch.label, dtype=torch.float32).view(-1, 1))


# ---------------------------------------------------------------- registry

@dataclass(frozen=True)
class BaselineSpec:
    """A registered baseline: how to build it and what it reads."""

    name: str
    build: Callable[[CtrFeatures, dict[str, Any]], CtrModel]
    description: str
    library: str = "llmrec"
    kind: str = "ctr"  # "ctr": labelled samples; "ranking": candidate lists
    trainable: bool = True
    history_len: int | None = None  # None: as many items as the samples keep
    defaults: dict[str, Any] = field(default_factory=dict)
    model_class: Callable[[], type] | None = None  # the class whose arguments ``params`` may set
    inputs: str = "samples"  # ranking models: "sequences" (next-item) or "interactions" (user-item pairs)
    # the model's tuned settings of the shared trainer (``train.*`` fields): a config starts from them and states
    # only what differs (``BaselineConfig`` fills each one the config leaves unset)
    train: dict[str, Any] = field(default_factory=dict)
    # CTR models that read each sample's history features (CtrFeatures.history_stats: the whole earlier history)
    history_stats: bool = False
    item_text: bool = False  # reads frozen pretrained item vectors (the config's ``item_text``)

    def check_params(self, params: dict[str, Any]) -> None:
        """A ConfigError naming any key of ``params`` the model does not take."""
        if self.model_class is not None:
            cls = self.model_class()
            _check_arguments(cls, params, f"{cls.__name__} ({self.library})")


def _fuxi(name: str, description: str, history_len: int | None = None, padding: str = "pre",
          **defaults: Any) -> BaselineSpec:
    return BaselineSpec(name.lower(), lambda features, params: FuxiCtrModel(features, name, params, padding),
                        description,
                        library="fuxictr", history_len=history_len, defaults={"embedding_dim": 16, **defaults},
                        model_class=lambda: _fuxictr_class(name), item_text=True)


def _describe(spec: BaselineSpec) -> str:
    tuned = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in spec.train.items())
    return (f"{spec.kind:7s}  {spec.library:8s}  {spec.description}" + (f" [train: {tuned}]" if tuned else "")
            + (" [reads item_text]" if spec.item_text else ""))


BASELINES: Registry[BaselineSpec] = Registry("baseline", key="model", describe=_describe)


def register_baseline(spec: BaselineSpec) -> BaselineSpec:
    """Add (or replace) a baseline under its name."""
    return BASELINES.register(spec)


for _spec in (
    BaselineSpec("popularity", lambda f, p: SmoothedRate(f, "item", **p),
                 "floor: the target item's positive rate in the training rows", trainable=False, history_len=0,
                 model_class=lambda: SmoothedRate),
    BaselineSpec("user_mean", lambda f, p: SmoothedRate(f, "user", **p),
                 "floor: the user's positive rate in the training rows", trainable=False, history_len=0,
                 model_class=lambda: SmoothedRate),
    BaselineSpec("history_rate", lambda f, p: HistoryRate(f, **p),
                 "floor: the share of liked items among the sample's 10 most recent history items (no model)",
                 trainable=False, history_len=10, model_class=lambda: HistoryRate),
    BaselineSpec("history_mean", lambda f, p: HistoryMean(f, **p),
                 "floor: the mean rating of the sample's 10 most recent history items, calibrated on the training rows "
                 "(two parameters)", trainable=False, history_len=10, model_class=lambda: HistoryMean),
    # one weight per id, zero initialisation: a larger step and more epochs than the deep models (at 1e-3 the
    # validation AUC on ML-1M still rose after 10 epochs: .7087 -> .7462)
    BaselineSpec("logreg", lambda f, p: LogisticRegression(f, **p),
                 "floor: logistic regression on one-hot user and item ids and multi-hot genres", history_len=0,
                 model_class=lambda: LogisticRegression, train={"learning_rate": 1e-2, "epochs": 50, "patience": 2}),
    BaselineSpec("logreg_history", lambda f, p: HistoryLogisticRegression(f, **p),
                 "floor: logreg plus one-hot user attributes and 5 standardized features of the sample's earlier "
                 "ratings (length, mean, positive rate, last 10, same genre)", history_len=0, history_stats=True,
                 model_class=lambda: HistoryLogisticRegression,
                 train={"learning_rate": 1e-2, "epochs": 50, "patience": 2}),
    BaselineSpec("mf", lambda f, p: MatrixFactorization(f, **p),
                 "matrix factorization: user x item embeddings and biases (the CF model of CoLLM's tokens)",
                 history_len=0, model_class=lambda: MatrixFactorization, defaults={"embedding_dim": 16},
                 train={"learning_rate": 1e-2, "epochs": 30, "patience": 2, "weight_decay": 1e-5}),
    _fuxi("DIN", "DIN (Zhou et al. 2018): target attention over the history",
          dnn_hidden_units=[200, 80], attention_hidden_units=[64], net_dropout=0.1),
    # DIEN packs its GRU inputs with pack_padded_sequence, which reads the first `length` steps:
    # it needs the items at the left end (FuxiCTR's LongCTR loader pads on the left by default)
    _fuxi("DIEN", "DIEN (Zhou et al. 2019): GRU interest extraction + AUGRU evolution", padding="post",
          dnn_hidden_units=[200, 80], net_dropout=0.1),
    _fuxi("DCNv2", "DCNv2 (Wang et al. 2021): cross network over the features and the mean-pooled history",
          model_structure="parallel", num_cross_layers=3, parallel_dnn_hidden_units=[200, 80], net_dropout=0.1),
    _fuxi("SIM", "SIM (Pi et al. 2020): soft search of the long history, then target attention over the top k "
          "and the recent items", history_len=500, dnn_hidden_units=[200, 80], short_seq_len=60, topk=50,
          net_dropout=0.1),
):
    register_baseline(_spec)


# the sequential models' training on the TRSR candidate lists: SASRec on Amazon Games reaches Recall@3 .621 with
# these (results/trsr-baselines); 10 epochs of batch 1,024 leave it at the popularity floor's level (~.52)
SEQ_TRAIN: dict[str, Any] = {"epochs": 30, "batch_size": 256, "learning_rate": 1e-3, "patience": 3}


def _seq(name: str, cls: type, description: str, history_len: int = 50, inputs: str = "sequences",
         user_vocab: bool = False, **defaults: Any) -> BaselineSpec:
    reads_text = issubclass(cls, NextItemModel)

    def build(features: SeqFeatures, params: dict[str, Any]) -> nn.Module:
        extra: dict[str, Any] = {"n_users": features.users.size} if user_vocab else {}
        if reads_text and features.item_text is not None:
            extra.update(item_vectors=features.item_text.vectors, with_id=features.item_text.with_id)
        return cls(n_items=features.items.size, **extra, **params)

    return BaselineSpec(name, build, description, kind="ranking", history_len=history_len, defaults=defaults,
                        model_class=lambda: cls, inputs=inputs, trainable=cls.trainable,
                        train=dict(SEQ_TRAIN) if cls.trainable else {}, item_text=reads_text)


for _spec in (
    _seq("seq_popularity", SeqPopularity, "floor: candidates ranked by how often they occur in the training "
         "sequences", history_len=0),
    _seq("gru4rec", GRU4Rec, "GRU4Rec (Hidasi et al. 2016): a GRU over the history"),
    _seq("sasrec", SASRec, "SASRec (Kang & McAuley 2018): causal self-attention over the history"),
    _seq("narm", NARM, "NARM (Li et al. 2017): GRU with attention over its states"),
    _seq("caser", Caser, "Caser (Tang & Wang 2018): convolutions over the most recent items", history_len=5),
    _seq("ncf", NCF, "NCF / NeuMF (He et al. 2017): user x item, trained on every input interaction",
         history_len=0, inputs="interactions", user_vocab=True),
):
    register_baseline(_spec)


def build_model(name: str, features: CtrFeatures | SeqFeatures, params: dict[str, Any] | None = None) -> nn.Module:
    """The model ``name`` with its defaults updated by ``params``."""
    spec = BASELINES[name]
    return spec.build(features, {**spec.defaults, **(params or {})})
