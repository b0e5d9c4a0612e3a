"""``llmrec baseline``: train a classic model on a prepared folder's training split and score its
test split into the same run-folder format as ``llmrec evaluate``.

Layout of the run folder (beside config.yaml, predictions.parquet, metrics.json, plots/)::

    model/features.json   the vocabularies (ids -> integers)
    model/best.pt         the selected weights (best validation)
    model/checkpoint.pt   the last checkpoint (removed when the run finishes)
    training.json         validation history, selected step, timings

The training rows are the split's rows, or the same seeded subset ``llmrec train`` draws for
``train_samples`` (:func:`llmrec.data.sampling.sample_indices`); the test rows are the same
seeded subset ``llmrec evaluate`` scores for ``test.limit``, so the rows line up with the LLM
runs for ``llmrec compare --paired``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmrec.baselines.config import BaselineConfig
from llmrec.baselines.features import CtrFeatures
from llmrec.baselines.models import BASELINES, CtrModel, build_model
from llmrec.baselines.trainer import fit, predict
from llmrec.data.prepared import PreparedData
from llmrec.data.sampling import sample_indices
from llmrec.errors import ConfigError, DataError
from llmrec.evaluate import select_rows, write_results
from llmrec.io import write_json
from llmrec.runs import RunDir

__all__ = ["run_baseline", "check_baseline", "load_baseline"]


def check_baseline(config: BaselineConfig) -> tuple[PreparedData, int]:
    """Every cheap check before anything is written; returns (prepared data, history length)."""
    if config.model not in BASELINES:
        raise ConfigError(f"model: unknown baseline {config.model!r} (known: {', '.join(sorted(BASELINES))})")
    prepared = PreparedData.load(config.data)
    for name in {config.split, config.valid.split, *([config.test.split] if config.test.enabled else [])}:
        table = prepared.split(name)
        if table.num_rows == 0:
            raise DataError(f"{config.data}: split {name!r} is empty")
        if "label" not in table.column_names:
            raise DataError(f"{config.data}/{name}.parquet: {config.model} is a CTR baseline and needs labelled "
                            f"samples; this is a {prepared.protocol} ranking folder")
    n = prepared.split(config.split).num_rows
    if config.train_samples and config.train_samples > n:
        raise ConfigError(f"train_samples: cannot draw {config.train_samples} samples from {config.data}/"
                          f"{config.split}, which has {n}")
    spec = BASELINES[config.model]
    spec.check_params({**spec.defaults, **config.params})
    history_len = config.history_len if config.history_len is not None else spec.history_len
    if history_len is None:
        history_len = CtrFeatures.kept_history(prepared, config.split)
    if spec.library == "fuxictr" and history_len < 1:
        raise ConfigError(f"history_len: {config.model} reads the history; give it at least 1 item")
    return prepared, history_len


def _rows(table, rows: np.ndarray) -> list[dict[str, Any]]:
    cols = [c for c in ("sample_id", "user", "item", "label") if c in table.column_names]
    return table.select(cols).take(rows.tolist()).to_pylist()


def run_baseline(config: BaselineConfig, *, log: Callable[[str], None] = print,
                 progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Train, select on validation, score the test split, write the run folder; return (folder, result)."""
    prepared, history_len = check_baseline(config)
    spec = BASELINES[config.model]
    dataset, protocol = prepared.dataset, prepared.protocol
    default = Path("runs") / RunDir.default_name("baseline", config.model, dataset, protocol)
    run, finished = RunDir.open(config.run_dir or default, config.model_dump(mode="json"),
                                config.identity(prepared.fingerprint()), resume=config.resume, log=log)
    if finished is not None:
        return run.path, finished
    t0 = time.perf_counter()
    features = CtrFeatures.build(prepared, history_len)
    train_table = prepared.split(config.split)
    seed = config.sample_seed if config.sample_seed is not None else config.seed
    train_rows = sample_indices(train_table.num_rows, config.train_samples, seed)
    train = features.split(prepared, config.split, train_rows)
    valid_table = prepared.split(config.valid.split)
    valid_rows = np.asarray(select_rows(valid_table, config.valid.limit, config.valid.sample_seed))
    valid = features.split(prepared, config.valid.split, valid_rows)
    prep_s = time.perf_counter() - t0
    log(f"{config.model}: {len(train):,} training samples, {len(valid):,} validation samples, history "
        f"{history_len} items (from the {train.source})")

    torch.manual_seed(config.seed)
    model = build_model(config.model, features, config.params)
    model_dir = run.path / "model"
    features.save(model_dir / "features.json")
    t1 = time.perf_counter()
    state = fit(model, features, train, valid, config.train, model_dir, seed=config.seed,
                metric=config.valid.metric, log=log, progress=progress)
    train_s = time.perf_counter() - t1
    params = sum(p.numel() for p in model.parameters())
    training = {"model": config.model, "library": spec.library, "parameters": int(params),
                "features": {**features.describe(), "history_source": train.source}, "train_samples": len(train), "valid_samples": len(valid),
                "selected_step": state.best_step, f"valid_{config.valid.metric}": state.best,
                "steps": state.global_step, "history": state.history, "prepare_s": round(prep_s, 2),
                "train_s": round(train_s, 2),
                "train_samples_per_s": round(state.global_step * config.train.batch_size / train_s, 1)
                if state.global_step and train_s > 0 else None}
    write_json(run.path / "training.json", training)
    result: dict[str, Any] = {"dataset": dataset, "protocol": protocol, "split": config.test.split,
                              "baseline": config.model, "training": {k: v for k, v in training.items()
                                                                     if k != "history"}}
    if config.test.enabled:
        test_table = prepared.split(config.test.split)
        test_rows = np.asarray(select_rows(test_table, config.test.limit, config.test.sample_seed))
        test = features.split(prepared, config.test.split, test_rows)
        t2 = time.perf_counter()
        scores = predict(model, features, test)
        score_s = time.perf_counter() - t2
        rows = _rows(test_table, test_rows)
        done = {str(r["sample_id"]): {"score": float(s)} for r, s in zip(rows, scores)}
        metrics, plots = write_results(run, rows, done, False, f"{config.model} {dataset}/{protocol}/"
                                       f"{config.test.split}")
        result.update(metrics=metrics, plots=plots,
                      run={"samples": len(rows), "prompts": len(rows), "scoring_s": round(score_s, 3),
                           "samples_per_s": round(len(rows) / score_s, 1) if score_s > 0 else None})
    else:
        result["metrics"] = {}
    (model_dir / "checkpoint.pt").unlink(missing_ok=True)
    run.finish(result)
    return run.path, result


def load_baseline(run_dir: str | Path) -> tuple[CtrModel, CtrFeatures, BaselineConfig]:
    """A finished baseline run's model (selected weights), its features and its config: scores again
    exactly what the run scored."""
    run = RunDir(run_dir)
    raw = {k: v for k, v in run.read_config().items() if not k.startswith("_")}
    config = BaselineConfig.model_validate(raw)
    prepared, history_len = check_baseline(config)
    features = CtrFeatures.build(prepared, history_len)
    if not features.same_vocabularies(run.path / "model" / "features.json"):
        raise DataError(f"{config.data}: its ids differ from the ones {run_dir} was trained on")
    model = build_model(config.model, features, config.params)
    state = torch.load(run.path / "model" / "best.pt", map_location="cpu", weights_only=False)["model"]
    model.load_state_dict(state)
    model.eval()
    return model, features, config
