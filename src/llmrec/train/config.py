"""Typed configs of ``llmrec train`` (one YAML file; any field overridable with ``--set``).

>>> cfg = TrainConfig(data="prepared/ml-100k-tallrec", train_samples=256)
>>> cfg.lora.r, cfg.lora.alpha, cfg.lora.target_modules, cfg.optim.learning_rate, cfg.optim.epochs
(8, 16, ['q_proj', 'v_proj'], 0.0003, 3.0)

Fewer few-shot samples train for more epochs when the config sets none (:data:`FEW_SHOT_EPOCHS`, the shipped
TALLRec configs' schedule; selection on validation picks the epoch):

>>> [TrainConfig(data="d", train_samples=n).optim.epochs for n in (16, 64, 256)]
[10.0, 5.0, 3.0]
>>> TrainConfig(data="d", train_samples=16, optim={"epochs": 2}).optim.epochs
2.0
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmrec.configfile import fields_given
from llmrec.data.kinds import SampleKind, kind_of
from llmrec.llm import ModelConfig, ScoringConfig
from llmrec.prompts.settings import PromptSettings
from llmrec.tracking import TrackingSettings
from llmrec.train.adapters import LoraSettings


class OptimSettings(BaseModel):
    """Optimizer, schedule and batching (passed to TRL's ``SFTConfig``)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(3e-4, gt=0)
    epochs: float = Field(3.0, gt=0, allow_inf_nan=False)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: epochs decide)")
    batch_size: int = Field(8, ge=1, description="samples per device per forward pass")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps (effective batch = batch_size x this)")
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: float = Field(0.0, ge=0, description="warm-up steps (a float < 1 is a fraction of all steps)")
    lr_scheduler: str = Field("linear", description="transformers scheduler name: linear, cosine, constant, ...")
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = Field(False, description="trade compute for memory (slower; TRL's default is on)")
    loss: Literal["answer_only", "trl"] = Field(
        "answer_only", description="answer_only: LM head only at the label positions; trl: SFTTrainer's own loss")
    save_steps: int | None = Field(None, ge=1, description="checkpoint every N steps (default: every epoch)")
    logging_steps: int = Field(1, ge=1)
    shared_prefix: bool = Field(False, description="run the instruction header a batch's prompts share once per "
                                "step, the rows' tails against its keys and values (the same loss and gradients to float "
                                "rounding, fewer tokens; answer_only loss, one process, no gradient checkpointing)")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field(
        "auto", description="auto: bf16 for a bfloat16 model on a GPU, fp16 (with loss scaling) for a float16 one, "
        "none on CPU; fp16 for GPUs without bfloat16 (V100, T4)")


class SelectionSettings(BaseModel):
    """Model selection on the validation split (never on test)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    split: str = "valid"
    limit: int | None = Field(200, ge=1, description="seeded subset of the split scored at each evaluation")
    every_steps: int | None = Field(None, ge=1, description="evaluate every N steps (default: every epoch)")
    metric: str | None = Field(None, description="auc or logloss (CTR data), recall@k / mrr@k / ndcg@k / hit@k "
                               "(candidate lists); None: the sample kind's default (auc; ndcg@10 on candidate lists)")

    def metric_for(self, kind: str | SampleKind) -> str:
        """The selection metric for data of ``kind`` (a :class:`~llmrec.data.kinds.SampleKind` or its name).

        >>> SelectionSettings().metric_for("ranking"), SelectionSettings(metric="recall@3").metric_for("ranking")
        ('ndcg@10', 'recall@3')
        """
        return self.metric or kind_of(kind).default_metric
    patience: int | None = Field(None, ge=1, description="stop after this many evaluations without improvement")
    at_start: bool = Field(True, description="also score the untrained adapter (the zero-shot point)")


class InstructionStage(BaseModel):
    """Optional first stage: general instruction tuning on an Alpaca-style JSON file."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(None, description="JSON list of {instruction, input, output}; None skips the stage")
    limit: int | None = Field(None, ge=1, description="use a seeded subset of this many records")
    epochs: float = Field(1.0, gt=0, allow_inf_nan=False)
    learning_rate: float = Field(3e-4, gt=0)
    max_answer_tokens: int = Field(128, ge=1)


class MapperSettings(BaseModel):
    """The MLP that maps a collaborative embedding into the LLM's input-embedding space."""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(256, ge=1, description="width of the mapper's hidden layer (embedding -> hidden -> GELU -> "
                        "the LLM's hidden size)")


class CollabSettings(BaseModel):
    """Collaborative tokens (CoLLM-style; docs/guides/collab-tokens.md): a finished ``llmrec baseline`` run's user and
    item embeddings (frozen), mapped by :class:`MapperSettings` into the prompt where the template says
    (``{{ user_cf }}``, ``{{ item_cf }}``).

    Stages (CoLLM): 1. LoRA on text prompts (a plain ``llmrec train`` run); 2. ``stage: mapper`` with
    ``adapter_from: <stage-1 run>``: the mapper learns, the LoRA weights stay as they are; 3. optionally
    ``stage: joint`` (mapper and LoRA learn together) with ``adapter_from: <stage-2 run>``.

    >>> CollabSettings(run="runs/mf").stage, CollabSettings(run="runs/mf").mapper.hidden
    ('mapper', 256)
    """

    model_config = ConfigDict(extra="forbid")

    run: str = Field(description="a finished llmrec baseline run (mf, din, dien, dcnv2, sim) trained on this "
                     "prepared folder's training split (its data fingerprint is checked)")
    mapper: MapperSettings = Field(default_factory=MapperSettings)
    stage: Literal["mapper", "joint"] = Field("mapper", description="mapper: only the mapper learns (LoRA frozen); "
                                              "joint: mapper and LoRA learn")
    adapter_from: str | None = Field(None, description="the train run (or adapter folder) whose LoRA weights (and "
                                     "mapper, from a collab run) this run starts from; None: a fresh LoRA (under "
                                     "stage: mapper, the base model with the mapper alone)")


class TestSettings(BaseModel):
    """Scoring of the test split with the selected adapter at the end of training."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    split: str = "test"
    limit: int | None = Field(None, ge=1)
    data: str | None = Field(None, description="another prepared folder to test on (cross-domain); default: data")


# optim.epochs where a config sets none, by few-shot size (train_samples at most N: this many epochs; more samples
# or the whole split: OptimSettings' 3). The TALLRec table's configs (configs/tallrec/*-{16,64,256}.yaml): at 64
# shots every draw selected epoch 4 or 5 on validation (results/tallrec-table), so 3 epochs would stop early.
FEW_SHOT_EPOCHS: tuple[tuple[int, float], ...] = ((16, 10.0), (64, 5.0))


def default_epochs(train_samples: int | None) -> float:
    """The epochs of a run of ``train_samples`` few-shot samples (None: the whole split) whose config sets none.

    >>> default_epochs(None), default_epochs(64), default_epochs(65)
    (3.0, 5.0, 3.0)
    """
    for most, epochs in FEW_SHOT_EPOCHS:
        if train_samples is not None and train_samples <= most:
            return epochs
    return OptimSettings.model_fields["epochs"].default


class TrainConfig(PromptSettings):
    """Everything ``llmrec train`` needs (the prompt fields come from :class:`PromptSettings`)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="prepared folder (llmrec data prepare / data import-tallrec)")
    mix_data: list[str] = Field(default_factory=list, description="more views of the same samples (e.g. the "
                                "folder before llmrec retrieve): the same few-shot rows of each are added, so ReLLa's "
                                "ReiT is data=<SUBR folder>, mix_data=[<original folder>] (N + N samples)")
    split: str = "train"
    train_samples: int | None = Field(None, ge=1, description="few-shot: a seeded subset of this many samples")
    sample_seed: int | None = Field(None, description="seed of the few-shot draw (default: seed)")
    seed: int = 42
    answer_suffix: str = Field(".", description="text after the Yes/No token in the target ('Yes.' in TALLRec)")
    ranking_negatives: int | None = Field(1, ge=1, description="training on candidate lists (trsr): the CTR view "
                                          "keeps each list's positive and this many negatives (None: all)")
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    optim: OptimSettings = Field(default_factory=OptimSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    instruction: InstructionStage = Field(default_factory=InstructionStage)
    test: TestSettings = Field(default_factory=TestSettings)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    run_dir: str | None = Field(None, description="run folder (default: runs/<time>-train-<dataset>-<n>)")
    resume: bool = Field(True, description="continue an interrupted run in run_dir from its last checkpoint")
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="also log the run (config, "
                                       "curves, metrics, files) to MLflow / TensorBoard (docs/tracking.md)")
    collab: CollabSettings | None = Field(None, description="collaborative tokens in the prompt (CoLLM; "
                                          "docs/guides/collab-tokens.md): the CF model, the mapper, the stage")

    @model_validator(mode="before")
    @classmethod
    def _few_shot_epochs(cls, data: Any) -> Any:
        """``optim.epochs`` from :func:`default_epochs` where the config sets none."""
        if not isinstance(data, dict):
            return data
        optim = fields_given(data.get("optim"), OptimSettings)
        if optim is None:
            return data  # pydantic names the field
        if "epochs" in optim:
            return data
        try:
            shots = None if data.get("train_samples") is None else int(data["train_samples"])
        except (TypeError, ValueError):
            return data  # pydantic names the field
        return {**data, "optim": {**optim, "epochs": default_epochs(shots)}}

    def test_config(self, adapter: str, run_dir: str):
        """The :class:`~llmrec.evaluate.EvaluateConfig` of the test pass: the test section, this config's prompt
        settings (its template only where the test data is the training data), model and scoring, and ``adapter``.
        """
        from llmrec.evaluate import EvaluateConfig

        data = self.test.data or self.data
        prompt = {name: getattr(self, name) for name in PromptSettings.model_fields}
        if data != self.data:  # another data set is scored with its own default template
            prompt["template"] = None
        return EvaluateConfig(data=data, split=self.test.split, limit=self.test.limit, model=self.model,
                              adapter=adapter, scoring=self.scoring, run_dir=run_dir, **prompt)

    def identity(self, data_fingerprints: dict[str, str] | None = None) -> dict[str, Any]:
        """Fields that determine the result (a resumed run must match them), with the content
        hashes of the prepared folders it reads."""
        keep = self.model_dump(mode="json", exclude={"run_dir", "resume", "scoring", "tracking"})
        if keep["ranking_negatives"] == 1:  # fields added later stay out at their defaults: older runs still match
            del keep["ranking_negatives"]
        if keep["collab"] is None:
            del keep["collab"]
        if keep["optim"]["mixed_precision"] == "auto":
            del keep["optim"]["mixed_precision"]
        del keep["optim"]["shared_prefix"]  # how the step is computed, not what it computes
        if keep["selection"]["metric"] is None:
            keep["selection"]["metric"] = "auc"
        if data_fingerprints:
            keep["data_fingerprints"] = data_fingerprints
        return keep
