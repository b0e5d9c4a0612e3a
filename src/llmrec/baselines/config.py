"""Typed config of ``llmrec baseline`` (one YAML file; any field overridable with ``--set``).

>>> cfg = BaselineConfig(model="din", data="prepared/ml-1m-rella")
>>> cfg.train.batch_size, cfg.train.patience, cfg.valid.split, cfg.test.split
(1024, 2, 'valid', 'test')

A model's tuned training settings (its registry entry's ``train``) fill what the config leaves unset; what it
sets wins:

>>> cfg = BaselineConfig(model="sasrec", data="prepared/amazon-games-trsr", train={"patience": 5})
>>> cfg.train.epochs, cfg.train.batch_size, cfg.train.patience
(30, 256, 5)

``item_text`` gives a model LLM item knowledge: every item's text encoded by the retrieval encoder (the settings and
the cache of ``llmrec retrieve``), a frozen vector per item beside (or instead of) its id embedding:

>>> cfg = BaselineConfig(model="sasrec", data="prepared/amazon-games-trsr", item_text={"with_id": False})
>>> cfg.item_text.encoder.kind, cfg.item_text.encoder.pca_dim, cfg.item_text.with_id
('llm', 512, False)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from llmrec.configfile import fields_given
from llmrec.retrieval.config import EncoderSettings
from llmrec.tracking import TrackingSettings

__all__ = ["BaselineConfig", "BaselineTrainSettings", "BaselineValidSettings", "BaselineTestSettings",
           "ItemTextSettings"]


class BaselineTrainSettings(BaseModel):
    """Optimisation of the trainable models (Adam, shuffled mini-batches, early stopping)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1, description="at most this many epochs (early stopping may end sooner)")
    batch_size: int = Field(1024, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(10.0, gt=0)
    patience: int = Field(2, ge=1, description="stop after this many validations without improvement")
    eval_every: int | None = Field(None, ge=1, description="validate every N steps (default: every epoch)")
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints (resume after a kill)")


class BaselineValidSettings(BaseModel):
    """Early stopping and model selection on the validation split (never on test)."""

    model_config = ConfigDict(extra="forbid")

    split: str = "valid"
    limit: int | None = Field(None, ge=1, description="a seeded subset of the split")
    sample_seed: int = 0
    metric: str | None = Field(None, description="auc or logloss (CTR); recall@k, mrr@k, ndcg@k or hit@k "
                               "(candidate lists); default auc / ndcg@10")


class BaselineTestSettings(BaseModel):
    """Scoring of the test split with the selected model (the run folder's predictions)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    split: str = "test"
    limit: int | None = Field(None, ge=1, description="a seeded subset (the same rows as llmrec evaluate's limit)")
    sample_seed: int = 0


class ItemTextSettings(BaseModel):
    """LLM item knowledge in a classic model: each item's text encoded once by the retrieval encoder (the same
    settings, the same cache as ``llmrec retrieve``: one encoding serves both), centred, PCA-projected and
    L2-normalised as SUBR uses it, then **frozen**; a trainable linear map takes it to the model's embedding size.

    DIN, DIEN, DCNv2 and SIM read it as one more item feature (FuxiCTR's pretrained embedding) of the target and of
    every history item; GRU4Rec, SASRec, NARM and Caser represent an item (history and candidates) by the projected
    vector, plus the id embedding when ``with_id``. Every item of ``items.parquet`` needs a vector (an item the table
    lacks gets zeros, as its id gets the unknown row).
    """

    model_config = ConfigDict(extra="forbid")

    encoder: EncoderSettings = Field(default_factory=EncoderSettings, description="how item texts become vectors: "
                                     "the `encoder` section of a retrieve config (llm, sentence-transformers or a "
                                     "vector file; `pca_dim` sets the frozen vector's size)")
    with_id: bool = Field(True, description="keep the id embedding: beside the text feature (CTR models), added to "
                          "the projected vector (sequential models); false: an item is its text vector only")


class BaselineConfig(BaseModel):
    """Everything ``llmrec baseline`` needs."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="a registered baseline (llmrec baseline --list)")
    data: str = Field(description="prepared folder (llmrec data prepare)")
    params: dict[str, Any] = Field(default_factory=dict, description="model hyper-parameters (update its defaults; "
                                   "for DIN/DIEN/DCNv2/SIM FuxiCTR's constructor arguments)")
    history_len: int | None = Field(None, ge=0, description="history items per sample (default: the model's; "
                                    "None there: as many as the samples keep)")
    split: str = "train"
    train_samples: int | None = Field(None, ge=1, description="train on a seeded subset of this many samples "
                                      "(the same rows llmrec train draws with the same seed)")
    sample_seed: int | None = Field(None, description="seed of the subset draw (default: seed)")
    seed: int = 42
    train: BaselineTrainSettings = Field(default_factory=BaselineTrainSettings)
    valid: BaselineValidSettings = Field(default_factory=BaselineValidSettings)
    test: BaselineTestSettings = Field(default_factory=BaselineTestSettings)
    item_text: ItemTextSettings | None = Field(None, description="LLM item knowledge: frozen pretrained item vectors "
                                               "from the retrieval encoder as an item feature (the models that read "
                                               "them: llmrec baseline --list); None: ids only")
    run_dir: str | None = Field(None, description="run folder (default: runs/<time>-baseline-<model>-<dataset>)")
    resume: bool = Field(True, description="continue an interrupted run in run_dir from its last checkpoint")
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="also log the run (config, "
                                       "curves, metrics, files) to MLflow / TensorBoard (docs/tracking.md)")

    @model_validator(mode="before")
    @classmethod
    def _model_train_defaults(cls, data: Any) -> Any:
        """Start ``train`` from the model's tuned settings (:attr:`BaselineSpec.train`); the config's own win.
        An unknown model is left to :func:`~llmrec.baselines.run.check_baseline` (one line naming the known)."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            return data
        from llmrec.baselines.models import BASELINES

        spec = BASELINES.get(data["model"])
        if spec is None or not spec.train:
            return data
        given = fields_given(data.get("train"), BaselineTrainSettings)
        if given is None:
            return data  # pydantic names the field
        return {**data, "train": {**spec.train, **given}}

    @model_serializer(mode="wrap")
    def _leave_out_unset_item_text(self, handler) -> dict[str, Any]:
        """``item_text`` stays out of the dump when it is None (a field added later: the run folders' identities and
        the experiment step keys of the runs without it stay what they were)."""
        data = handler(self)
        if isinstance(data, dict) and data.get("item_text", 0) is None:
            del data["item_text"]
        return data

    def identity(self, data_fingerprint: str | None = None, item_vectors: str | None = None) -> dict[str, Any]:
        """Fields that determine the result (a resumed run must match them); ``item_vectors``: the fingerprint of
        the ``item_text`` vectors (:func:`llmrec.baselines.itemtext.vectors_fingerprint`: the encoder's weights,
        texts and settings, or the vector file's content), so another encoding is another run."""
        keep = self.model_dump(mode="json", exclude={"run_dir", "resume", "tracking"})
        if data_fingerprint:
            keep["data_fingerprint"] = data_fingerprint
        if item_vectors:
            keep["item_vectors"] = item_vectors
        return keep
