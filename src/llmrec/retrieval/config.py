"""Typed config of ``llmrec retrieve`` (one YAML file; any field overridable with ``--set``).

>>> cfg = RetrievalConfig(data="prepared/ml-1m-rella", out="prepared/ml-1m-rella-subr10")
>>> cfg.k, cfg.encoder.kind, cfg.encoder.pca_dim, cfg.encoder.model.name
(10, 'llm', 512, 'default')
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llmrec.llm.settings import ModelConfig
from llmrec.parallel import EngineSettings

DEFAULT_ITEM_TEMPLATE = (
    "{{ title }}{% if author %} by {{ author }}{% endif %}{% if year %} ({{ year }}){% endif %}"
    "{% if genres %}, genres: {{ genres | replace('|', ', ') }}{% endif %}"
    "{% if publisher %}, published by {{ publisher }}{% endif %}"
)


class EncoderSettings(BaseModel):
    """How item texts become vectors."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["llm", "sentence-transformers", "file"] = Field(
        "llm", description="llm: mean-pooled last-layer states of model; sentence-transformers: that library's "
        "encode(); file: vectors from `path`")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the encoder model (llm, sentence-transformers)")
    path: str | None = Field(None, description="kind=file: a parquet file with columns item (str) and vector (list)")
    item_template: str = Field(DEFAULT_ITEM_TEMPLATE, description="Jinja text of one item (its items.parquet "
                               "columns as variables; missing columns are empty)")
    max_tokens: int = Field(64, ge=1, description="tokens per item text (longer texts are cut)")
    batch_size: int = Field(32, ge=1, description="item texts per forward pass")
    chunk_items: int = Field(512, ge=1, description="items encoded between checkpoints of the cache")
    pca_dim: int | None = Field(512, ge=1, description="centre and project onto this many principal components "
                                "(at most the vector size); None: no PCA, no centring")


class RetrievalConfig(BaseModel):
    """Everything ``llmrec retrieve`` needs: input and output folders, K, the encoder."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="prepared CTR folder with sequences.parquet (llmrec data prepare -p rella)")
    out: str = Field(description="output prepared folder (same schema, history = the K retrieved items)")
    k: int = Field(10, ge=1, description="retrieved history items per sample")
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    dense_max_items: int = Field(12000, ge=0, description="up to this many items, precompute the items x items "
                                 "similarity matrix (4 bytes per pair); above it, per-user blocks (bounded memory)")
    dense_pass_mib: int = Field(32, ge=0, description="the items x items similarities are built in passes over the "
                                "target items, at most this many MiB at a time (0: one target item per pass)")
    block_entries: int = Field(1 << 15, ge=1024, description="similarities computed at once (a block of samples of "
                               "one user; small enough to stay in the CPU cache)")
    overwrite: bool = Field(False, description="replace another prepared folder at `out`")
    engine: EngineSettings = Field(default_factory=EngineSettings, description="local, or Ray Data workers for the "
                                   "item encoding (chunks) and SUBR (blocks of samples); the same output")
