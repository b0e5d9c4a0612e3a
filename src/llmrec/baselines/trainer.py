"""The one trainer every trainable baseline shares: Adam on shuffled mini-batches, validation
every epoch (or every ``eval_every`` steps), early stopping on the validation metric only,
checkpoints that make a killed run resume to the same result.

A checkpoint (``checkpoint.pt``, written atomically every ``checkpoint_every`` steps and after
each validation) holds the weights, the optimizer, the torch RNG state and the position in
the epoch; the batch order of epoch ``e`` is a permutation drawn with ``seed + e``, so the
resumed run sees the same batches in the same order. ``best.pt`` holds the weights of the best
validation so far; they are the model at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from llmrec.baselines.config import BaselineTrainSettings
from llmrec.errors import LlmrecError
from llmrec.io import atomic_path
from llmrec.metrics import higher_is_better

__all__ = ["TrainState", "TrainTask", "fit"]


@dataclass
class TrainState:
    """Where training stands (saved in every checkpoint)."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # the training loss of each step (step i + 1 at index i)


class TrainTask(Protocol):
    """What the trainer needs from the data side (:mod:`llmrec.baselines.tasks`)."""

    metric: str

    def __len__(self) -> int:
        """Training rows (instances) per epoch."""

    def batch(self, rows: np.ndarray) -> Any:
        """The training batch of ``rows``."""

    def validate(self, model: torch.nn.Module) -> float:
        """The validation metric of ``model``."""

    def fit_counts(self, model: torch.nn.Module) -> None:
        """Fit a counting model (no gradient steps)."""

    def fit_inputs(self, model: torch.nn.Module) -> None:
        """Fit the statistics of the training inputs a model with ``fit_inputs`` standardizes with."""


def _better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best + 1e-6 if higher_is_better(metric) else value < best - 1e-6


def _save(path: Path, obj: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def fit(model: torch.nn.Module, task: TrainTask, settings: BaselineTrainSettings, folder: Path, *, seed: int,
        log: Callable[[str], None] = print, progress: bool = True,
        report: Callable[[dict[str, float], int], None] | None = None) -> TrainState:
    """Train ``model`` on ``task`` in place (best validation weights at the end); resumable from ``folder``.

    ``report(points, step)`` (tracking) gets each step's ``train/loss`` and each validation's ``valid/<metric>``.
    """
    metric = task.metric
    folder.mkdir(parents=True, exist_ok=True)
    ckpt_path, best_path = folder / "checkpoint.pt", folder / "best.pt"
    if hasattr(model, "fit_inputs"):  # standardization from the training rows, before any step (a checkpoint holds it)
        task.fit_inputs(model)
    if not model.trainable:
        task.fit_counts(model)
        value = task.validate(model)
        state = TrainState(best=value, best_step=0, stopped=True, history=[{"step": 0, "epoch": 0, metric: value}])
        if report is not None:
            report({f"valid/{metric}": value}, 0)
        _save(best_path, {"model": model.state_dict()})
        return state
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    state = TrainState()
    if ckpt_path.exists():
        try:
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["rng"])
            state = TrainState(**ckpt["state"])
        except (OSError, RuntimeError, KeyError, TypeError, EOFError) as exc:
            raise LlmrecError(f"{ckpt_path}: unreadable checkpoint ({type(exc).__name__}); delete it to train "
                              "from the start") from None
        log(f"resuming from step {state.global_step} (epoch {state.epoch + 1})")
    steps_per_epoch = max(1, math.ceil(len(task) / settings.batch_size))
    eval_every = settings.eval_every or steps_per_epoch
    total = settings.epochs * steps_per_epoch

    def checkpoint() -> None:
        _save(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "rng": torch.get_rng_state(), "state": asdict(state)})

    def validate() -> None:
        value = task.validate(model)
        improved = _better(metric, value, state.best)
        state.history.append({"step": state.global_step, "epoch": round(state.global_step / steps_per_epoch, 4),
                              metric: round(value, 6), "best": improved})
        if improved:
            state.best, state.best_step, state.bad_evals = value, state.global_step, 0
            _save(best_path, {"model": model.state_dict()})
        else:
            state.bad_evals += 1
            state.stopped = state.bad_evals >= settings.patience
        bar.set_postfix({f"valid_{metric}": f"{value:.4f}", "best": f"{state.best:.4f}"})
        if report is not None:
            report({f"valid/{metric}": value}, state.global_step)

    bar = tqdm(total=total, initial=min(state.global_step, total), desc="training", unit="step",
               disable=not progress)
    model.train()
    while state.epoch < settings.epochs and not state.stopped:
        order = np.random.default_rng(seed + state.epoch).permutation(len(task))
        for b in range(state.step_in_epoch, steps_per_epoch):
            rows = np.sort(order[b * settings.batch_size : (b + 1) * settings.batch_size])
            loss = model.loss(task.batch(rows))
            if not torch.isfinite(loss):
                raise LlmrecError(f"training diverged at step {state.global_step} (loss {loss.item()}); lower "
                                  "train.learning_rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            state.global_step += 1
            state.step_in_epoch = b + 1
            state.losses.append(round(float(loss.detach()), 6))
            if report is not None:
                report({"train/loss": state.losses[-1]}, state.global_step)
            bar.update(1)
            if state.global_step % eval_every == 0 or state.step_in_epoch == steps_per_epoch:
                validate()
                checkpoint()
                model.train()
                if state.stopped:
                    break
            elif state.global_step % settings.checkpoint_every == 0:
                checkpoint()
        if not state.stopped:
            state.epoch += 1
            state.step_in_epoch = 0
            checkpoint()
    bar.close()
    if state.best is None:  # no validation happened (zero epochs left): validate now
        validate()
    model.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=False)["model"])
    return state

