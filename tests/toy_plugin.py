"""A plugin written outside the library: a toy protocol and a toy step kind, one registration each.

It touches no library file: :func:`register` adds both parts; the CLI, ``PrepareConfig``, the
audit and experiments then take them like the built-in ones (tests/test_plugins.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from llmrec.data.prepared import PreparedData
from llmrec.data.protocols import PROTOCOLS, Protocol, register_protocol
from llmrec.data.schema import RecData
from llmrec.experiments.steps import STEP_KINDS, StepKind, register_step_kind


class LastItemsConfig(BaseModel):
    """Builder settings of the toy protocol."""

    model_config = ConfigDict(extra="forbid")

    history_len: int = Field(4, ge=1, description="earlier items shown per sample")
    threshold: float = Field(3.0, description="label = rating > threshold")


def build_last_items(data: RecData, config: LastItemsConfig) -> PreparedData:
    """Per user, each rating after the first ``history_len`` is a sample; the user's last one is test, the one
    before valid, the others train."""
    inter = data.interactions.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
    rows = {"train": [], "valid": [], "test": []}
    sample_id = 0
    for user, group in inter.groupby("user", sort=True):
        items, ratings = group["item"].astype(str).tolist(), group["rating"].astype(float).tolist()
        for t in range(config.history_len, len(items)):
            split = "test" if t == len(items) - 1 else "valid" if t == len(items) - 2 else "train"
            rows[split].append({"sample_id": sample_id, "user": str(user), "item": items[t],
                                "label": int(ratings[t] > config.threshold),
                                "history_items": items[t - config.history_len:t],
                                "history_ratings": ratings[t - config.history_len:t]})
            sample_id += 1
    schema = pa.schema([("sample_id", pa.int64()), ("user", pa.string()), ("item", pa.string()), ("label", pa.int8()),
                        ("history_items", pa.list_(pa.string())), ("history_ratings", pa.list_(pa.float64()))])
    splits = {name: pa.Table.from_pylist(r, schema=schema) for name, r in rows.items()}
    return PreparedData(dataset=data.name, protocol="last_items", splits=splits, items=data.items,
                        users=data.users if data.users is not None else pd.DataFrame({"user": inter["user"].unique()}),
                        sequences=None, config={**config.model_dump(mode="json"), "label_threshold": config.threshold})


class CountConfig(BaseModel):
    """The toy step: count the positive samples of a prepared folder's splits."""

    model_config = ConfigDict(extra="forbid")

    data: str
    run_dir: str


def count_positives(config: CountConfig, log=print, progress=True) -> dict:
    prepared = PreparedData.load(config.data)
    counts = {name: int(np.sum(prepared.split(name)["label"].to_numpy())) for name in prepared.splits}
    out = Path(config.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"dataset": prepared.dataset, "protocol": prepared.protocol, "metrics": {"positives": counts["test"]},
              "counts": counts}
    (out / "metrics.json").write_text(json.dumps(result))
    return result


def register() -> None:
    register_protocol(Protocol("last_items", "toy: per user the last rating is test, the one before valid", "ctr",
                               templates={"*": "tallrec_movie"}, config=LastItemsConfig, build=build_last_items))
    register_step_kind(StepKind("count", lambda: CountConfig, "run_dir", count_positives, in_table=True,
                                description="toy: count positive samples"))


def unregister() -> None:
    del PROTOCOLS["last_items"]
    del STEP_KINDS["count"]
