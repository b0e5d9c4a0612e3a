"""``llmrec bench baselines``: training and scoring samples/s of every classic model on one folder.

For each model: the features are built once per history length (timed), then ``steps``
training steps of ``batch_size`` shuffled training samples (the first one is not timed: it
warms up allocators) and the scoring of ``score_samples`` validation samples. The figures
are throughput on this machine, not a quality measure (no model is trained to the end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from llmrec.baselines.features import CtrFeatures
from llmrec.baselines.models import BASELINES, build_model
from llmrec.baselines.trainer import predict
from llmrec.bench.machine import machine_info
from llmrec.data.prepared import PreparedData


def run(data: str, models: tuple[str, ...] = (), steps: int = 20, batch_size: int = 1024, score_samples: int = 20_000,
        seed: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    prepared = PreparedData.load(data)
    names = list(models) or list(BASELINES)
    default_len = CtrFeatures.kept_history(prepared)
    cache: dict[int, tuple[CtrFeatures, Any, Any, float]] = {}
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"machine": machine_info(), "data": data, "batch_size": batch_size, "steps": steps,
                           "torch_threads": torch.get_num_threads(), "models": {}}
    for name in names:
        spec = BASELINES[name]
        L = spec.history_len if spec.history_len is not None else default_len
        if L not in cache:
            t0 = time.perf_counter()
            feats = CtrFeatures.build(prepared, L)
            train = feats.split(prepared, "train")
            valid = feats.split(prepared, "valid")
            cache[L] = (feats, train, valid, time.perf_counter() - t0)
        feats, train, valid, build_s = cache[L]
        torch.manual_seed(seed)
        model = build_model(name, feats)
        entry: dict[str, Any] = {"history_len": L, "features_s": round(build_s, 2), "library": spec.library}
        if model.trainable:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            timed = 0.0
            for step in range(steps + 1):
                rows = np.sort(rng.choice(len(train), size=min(batch_size, len(train)), replace=False))
                t = time.perf_counter()
                loss = model.loss(feats.batch(train, rows))
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step:
                    timed += time.perf_counter() - t
            entry["train_samples_per_s"] = round(steps * min(batch_size, len(train)) / timed, 1)
        else:
            t = time.perf_counter()
            model.fit_counts(feats, train)
            entry["fit_s"] = round(time.perf_counter() - t, 3)
            entry["train_samples_per_s"] = round(len(train) / max(entry["fit_s"], 1e-9), 1)
        rows = np.arange(min(score_samples, len(valid)))
        sub = valid.take(rows)
        t = time.perf_counter()
        predict(model, feats, sub)
        entry["score_samples_per_s"] = round(len(sub) / (time.perf_counter() - t), 1)
        entry["parameters"] = int(sum(p.numel() for p in model.parameters()))
        log(f"{name}: train {entry['train_samples_per_s']:,} samples/s, score {entry['score_samples_per_s']:,} samples/s")
        out["models"][name] = entry
    return out
