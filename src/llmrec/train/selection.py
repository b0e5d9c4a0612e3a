"""Model selection on the validation split during training (a transformers callback).

At each evaluation (every epoch, or every N steps) the current adapter scores a fixed,
seeded subset of the validation split with the same Yes/No engine as ``llmrec evaluate``
(CTR rows: AUC / LogLoss; candidate lists: all candidates of each list, with prefix reuse,
and a ranking metric such as ``mrr@10``);
the best adapter so far is saved to ``<run>/best-adapter`` (atomically) and every point is
recorded in ``<run>/selection.json``. With ``patience`` the training stops after that many
evaluations without improvement. The test split is never looked at here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from llmrec.distributed import barrier, gather, shard, unshard, world
from llmrec.io import read_json, write_json
from llmrec.llm import AnswerTokens, EncodedPrompt, ScoringConfig, YesNoScorer, sharding
from llmrec.metrics import auc, higher_is_better, log_loss, metric_by_name
from llmrec.train.adapters import save_adapter
from llmrec.train.curves import valid_points


class ValidationSelector(TrainerCallback):
    """Scores the validation prompts, keeps the best adapter, stops early on a plateau."""

    def __init__(self, prompts: list[EncodedPrompt], labels: np.ndarray, answer: AnswerTokens, run_path: Path, *,
                 metric: str = "auc", every_steps: int | None = None, patience: int | None = None,
                 scoring: ScoringConfig | None = None, pad_token_id: int | None = None, at_start: bool = False,
                 log: Callable[[str], None] = print, report: Callable[[dict, int], None] | None = None) -> None:
        self.prompts, self.labels, self.answer = prompts, np.asarray(labels), answer
        self.path = Path(run_path)
        self.metric, self.every_steps, self.patience = metric, every_steps, patience
        self.scoring = scoring or ScoringConfig()
        self.pad_token_id = pad_token_id
        self.log = log
        self.report = report  # tracking: each validation point as (valid/<metric> values, step)
        self.at_start = at_start
        self.accelerator = None  # the trainer's, once it exists: gathers sharded parameters to save an adapter
        self.history: list[dict[str, Any]] = self._read()

    # ---------------------------------------------------------------- state
    @property
    def state_path(self) -> Path:
        return self.path / "selection.json"

    @property
    def best_path(self) -> Path:
        return self.path / "best-adapter"

    def _read(self) -> list[dict[str, Any]]:
        if self.state_path.exists():
            return read_json(self.state_path).get("evaluations", [])
        return []

    def best(self) -> dict[str, Any] | None:
        if not self.history:
            return None
        sign = 1 if higher_is_better(self.metric) else -1
        return max(self.history, key=lambda h: (sign * h[self.metric], -h["step"]))

    def _write(self) -> None:
        write_json(self.state_path, {"metric": self.metric, "evaluations": self.history, "best": self.best()})

    # ---------------------------------------------------------------- scoring
    def evaluate(self, model, step: int, epoch: float) -> dict[str, Any]:
        was_training = model.training
        model.eval()
        w = world()
        # under a launcher each process scores its block of the prompts (all of them when the parameters are
        # sharded: those forwards run in lockstep); every process then computes the same metrics, so
        # early stopping decides the same everywhere
        spread = w.size > 1 and not sharding(model)
        try:
            scorer = YesNoScorer(model, self.answer, self.scoring, pad_token_id=self.pad_token_id)
            scores = scorer.score(shard(self.prompts, w) if spread else self.prompts)
        finally:
            model.train(was_training)
        if spread:
            scores = np.asarray(unshard([list(part) for part in gather(scores.tolist())]), dtype=np.float64)
        point = {"step": int(step), "epoch": round(float(epoch or 0.0), 4), **self._metrics(scores),
                 "mean_score": float(scores.mean())}
        self.history = [h for h in self.history if h["step"] != point["step"]] + [point]
        if self.best() is point:
            save_adapter(model, self.best_path, self.accelerator)
            point["saved"] = True
        if w.main:
            self._write()
        barrier()
        shown = ", ".join(f"{k} {point[k]:.4f}" for k in point if k not in ("step", "epoch", "mean_score", "saved"))
        if w.main:
            self.log(f"validation at step {step} (epoch {point['epoch']}): {shown}"
                     f"{' (best so far)' if point.get('saved') else ''}")
            if self.report is not None:
                self.report(valid_points(point), int(step))
        return point

    def _metrics(self, scores: np.ndarray) -> dict[str, float]:
        """The recorded validation metrics: AUC / LogLoss of CTR rows, or ranking metrics of candidate lists."""
        if self.labels.ndim == 1:
            return {"auc": float(auc(self.labels, scores)), "logloss": float(log_loss(self.labels, scores))}
        lists = scores.reshape(self.labels.shape)
        names = dict.fromkeys([self.metric, "recall@3", "mrr@10", "ndcg@10"])
        return {name: metric_by_name(name, self.labels, lists) for name in names}

    def _stale(self) -> bool:
        if not self.patience or not self.history:
            return False
        best_step = self.best()["step"]
        return sum(h["step"] > best_step for h in self.history) >= self.patience

    # ---------------------------------------------------------------- callback hooks
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        # after a resume, forget evaluations made after the checkpoint (they will be redone)
        self.history = [h for h in self.history if h["step"] <= state.global_step]
        if state.global_step == 0 and not self.history and self.at_start:
            self.evaluate(model, 0, 0.0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every_steps and state.global_step % self.every_steps == 0:
            self.evaluate(model, state.global_step, state.epoch)
            control.should_training_stop = control.should_training_stop or self._stale()

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if not self.every_steps and not any(h["step"] == state.global_step for h in self.history):
            self.evaluate(model, state.global_step, state.epoch)
            control.should_training_stop = control.should_training_stop or self._stale()
