"""The training curves of a train run, for trackers (``tracking:`` in the config, docs/tracking.md).

One mapping from what the run records to named points, used live (a transformers callback forwards each
log entry; the validation selector reports each evaluation) and from the run folder (``train_log.json``:
TRL's log history; ``selection.json``: the validation points), so a run logged while it trains and a
finished run logged later show the same curves.

>>> train_points({"loss": 0.69, "grad_norm": 1.5, "learning_rate": 3e-4, "epoch": 0.5, "step": 2})
{'train/loss': 0.69, 'train/grad_norm': 1.5, 'train/learning_rate': 0.0003, 'train/epoch': 0.5}
>>> valid_points({"step": 4, "epoch": 1.0, "auc": 0.61, "logloss": 0.7, "mean_score": 0.5, "saved": True})
{'valid/auc': 0.61, 'valid/logloss': 0.7, 'valid/mean_score': 0.5}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["TRAIN_ARTIFACTS", "summary_metrics", "train_curves", "train_points", "tracking_callback", "valid_points"]

# the files of a train run sent as artifacts (besides config.yaml and metrics.json); test/ holds the test pass
TRAIN_ARTIFACTS = ["selection.json", "train_log.json", "test"]

_TRAIN_KEYS = ("loss", "grad_norm", "learning_rate", "epoch")


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def train_points(entry: Mapping[str, Any]) -> dict[str, float]:
    """A training log entry (a step's loss, gradient norm, learning rate) as ``train/<name>`` points."""
    if "loss" not in entry:  # the end-of-training summary entry (train_runtime, train_loss) is no curve point
        return {}
    return {f"train/{k}": float(entry[k]) for k in _TRAIN_KEYS if _num(entry.get(k))}


def valid_points(point: Mapping[str, Any]) -> dict[str, float]:
    """A validation point of the selector (its metrics) as ``valid/<metric>`` points."""
    return {f"valid/{k}": float(v) for k, v in point.items() if k not in ("step", "epoch") and _num(v)}


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def train_curves(run: Path) -> list[tuple[int, dict[str, float]]]:
    """``(step, points)`` of a run folder: the training log, then the validation points, by step."""
    out: dict[int, dict[str, float]] = {}
    log = _read(Path(run) / "train_log.json")
    for entry in log if isinstance(log, list) else []:
        if isinstance(entry, dict) and _num(entry.get("step")):
            out.setdefault(int(entry["step"]), {}).update(train_points(entry))
    selection = _read(Path(run) / "selection.json")
    for point in (selection or {}).get("evaluations", []) if isinstance(selection, dict) else []:
        if isinstance(point, dict) and _num(point.get("step")):
            out.setdefault(int(point["step"]), {}).update(valid_points(point))
    return [(step, points) for step, points in sorted(out.items()) if points]


def summary_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The final numbers of a train result besides its test metrics: the selected validation point
    (``valid_best/<metric>``) and the training facts (``train_summary/<fact>``).

    >>> summary_metrics({"selection": {"best": {"step": 4, "auc": 0.7}}, "train": {"steps": 8, "model": "m"}})
    {'valid_best/step': 4.0, 'valid_best/auc': 0.7, 'train_summary/steps': 8.0}
    """
    best = (result.get("selection") or {}).get("best") or {}
    out = {f"valid_best/{k}": float(v) for k, v in best.items() if k not in ("epoch", "saved") and _num(v)}
    out.update({f"train_summary/{k}": float(v) for k, v in (result.get("train") or {}).items() if _num(v)})
    return out


def tracking_callback(report: Callable[[dict[str, float], int], None]):
    """A transformers callback sending every training log entry to ``report(points, step)`` while training runs."""
    from transformers import TrainerCallback

    class TrackingCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            points = train_points(logs or {})
            if points and state.is_world_process_zero:
                report(points, state.global_step)

    return TrackingCallback()
