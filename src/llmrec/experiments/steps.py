"""What each kind of experiment step is: its typed config, where its output goes, how it runs.

One record per kind in :data:`STEP_KINDS` (peft-style explicit registry). The engine writes a
step's output into the experiment folder through ``output_field`` and decides from
``finished`` whether an output is complete.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class StepKind:
    """One kind of step."""

    name: str
    config: Callable[[], type[BaseModel]]  # the config class (imported lazily)
    output_field: str  # the config field that names the output folder
    run: Callable[..., Any]  # (config, log=, progress=) -> anything
    check: Callable[[Any], Any] | None = None  # cheap checks before anything runs (inputs must exist)
    marker: str = "metrics.json"  # the file a finished output holds
    transient: tuple[str, ...] = ("resume",)  # fields that do not change the result
    # files later steps read that a copied record leaves out (a train run's weights): a finished run
    # without them runs again when a step still to run reads it
    artifacts: tuple[str, ...] = ()

    def finished(self, folder: Path) -> bool:
        return (Path(folder) / self.marker).is_file()

    def missing_artifacts(self, folder: Path) -> list[str]:
        """The ``artifacts`` a finished output in ``folder`` lacks (``[]``: later steps can read it)."""
        return [name for name in self.artifacts if not (Path(folder) / name).exists()]


def _attr(module: str, name: str) -> Callable[[], Any]:
    """A function returning ``module.name``, imported when first called (steps load only what they run)."""
    return lambda: getattr(importlib.import_module(module), name)


def _runner(module: str, name: str, takes_progress: bool = True) -> Callable[..., Any]:
    """``module.name(config, log=..., progress=...)``, imported when it runs (some take no ``progress``)."""
    def run(config, log=print, progress=True):
        fn = _attr(module, name)()
        return fn(config, log=log, progress=progress) if takes_progress else fn(config, log=log)
    return run


def _checker(module: str, name: str) -> Callable[[Any], Any]:
    return lambda config: _attr(module, name)()(config)


STEP_KINDS: dict[str, StepKind] = {k.name: k for k in (
    StepKind("prepare", _attr("llmrec.data.prepare", "PrepareConfig"), "out",
             _runner("llmrec.data.prepare", "prepare", takes_progress=False),
             _checker("llmrec.data.prepare", "check_prepare"), marker="meta.json", transient=("overwrite",)),
    StepKind("retrieve", _attr("llmrec.retrieval", "RetrievalConfig"), "out", _runner("llmrec.retrieval", "retrieve"),
             marker="meta.json", transient=("overwrite",)),
    StepKind("summarize", _attr("llmrec.summarize", "SummarizeConfig"), "out", _runner("llmrec.summarize", "summarize"),
             marker="meta.json", transient=("overwrite", "checkpoint_every")),
    StepKind("train", _attr("llmrec.train", "TrainConfig"), "run_dir", _runner("llmrec.train.run", "train"),
             _checker("llmrec.train.run", "check_train"), artifacts=("adapter/adapter_config.json",)),
    StepKind("evaluate", _attr("llmrec.evaluate", "EvaluateConfig"), "run_dir", _runner("llmrec.evaluate", "evaluate"),
             _checker("llmrec.evaluate", "check_evaluate"), transient=("resume", "checkpoint_every")),
    StepKind("baseline", _attr("llmrec.baselines.config", "BaselineConfig"), "run_dir",
             _runner("llmrec.baselines.run", "run_baseline"), _checker("llmrec.baselines.run", "check_baseline")),
)}
