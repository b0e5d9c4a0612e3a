"""``llmrec bench baselines``: training and scoring throughput of every classic model that fits
one folder (CTR models on labelled samples, sequential models on candidate lists).

For each model: the features and training instances are built once per history length
(timed), then ``steps`` training steps of ``batch_size`` shuffled instances (the first one is
not timed: it warms up allocators) and the scoring of ``score_samples`` validation samples
(lists). The figures
are throughput on this machine, not a quality measure (no model is trained to the end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from llmrec.baselines.config import BaselineConfig
from llmrec.baselines.models import BASELINES, build_model
from llmrec.baselines.run import FAMILIES, build_features, build_task, check_baseline
from llmrec.bench.machine import machine_info
from llmrec.data.kinds import KINDS, detect
from llmrec.data.prepared import PreparedData


def run(data: str, models: tuple[str, ...] = (), steps: int = 20, batch_size: int = 1024, score_samples: int = 20_000,
        seed: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    prepared = PreparedData.load(data)
    kind = detect(prepared.split("train").schema)
    names = list(models) or BASELINES.names(lambda spec: spec.kind == kind.name)
    cache: dict[tuple, tuple[Any, Any, float]] = {}
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"machine": machine_info(), "data": data, "batch_size": batch_size, "steps": steps,
                           "torch_threads": torch.get_num_threads(), "models": {}}
    for name in names:
        spec = BASELINES[name]
        config = BaselineConfig(model=name, data=data)
        plan = check_baseline(config)
        key = (plan.history_len, spec.inputs)
        if key not in cache:
            t0 = time.perf_counter()
            feats = build_features(plan, config)
            n_train, n_valid = (prepared.split(s).num_rows for s in ("train", "valid"))
            task, _ = build_task(plan, config, feats, np.arange(n_train), np.arange(min(score_samples, n_valid)))
            cache[key] = (feats, task, time.perf_counter() - t0)
        feats, task, build_s = cache[key]
        torch.manual_seed(seed)
        model = build_model(name, feats)
        entry: dict[str, Any] = {"kind": spec.kind, "history_len": plan.history_len, "features_s": round(build_s, 2),
                                 "library": spec.library}
        size = min(batch_size, len(task))
        if model.trainable:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            timed = 0.0
            for step in range(steps + 1):
                rows = np.sort(rng.choice(len(task), size=size, replace=False))
                t = time.perf_counter()
                loss = model.loss(task.batch(rows))
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step:
                    timed += time.perf_counter() - t
            entry["train_samples_per_s"] = round(steps * size / timed, 1)
        else:
            t = time.perf_counter()
            task.fit_counts(model)
            entry["fit_s"] = round(time.perf_counter() - t, 3)
            entry["train_samples_per_s"] = round(len(task) / max(entry["fit_s"], 1e-9), 1)
        t = time.perf_counter()
        FAMILIES[spec.kind].predict(model, feats, task.valid)
        entry["score_samples_per_s"] = round(len(task.valid) / (time.perf_counter() - t), 1)
        entry["parameters"] = int(sum(p.numel() for p in model.parameters()))
        unit = "lists" if KINDS[spec.kind].lists else "samples"
        log(f"{name}: train {entry['train_samples_per_s']:,} instances/s, score {entry['score_samples_per_s']:,} "
            f"{unit}/s")
        out["models"][name] = entry
    return out
