"""What each kind of experiment step is: its typed config, where its output goes, how it runs.

One record per kind in :data:`STEP_KINDS` (peft-style explicit registry). The engine writes a
step's output into the experiment folder through ``output_field`` and decides from
``finished`` whether an output is complete.
"""

from __future__ import annotations

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

    def finished(self, folder: Path) -> bool:
        return (Path(folder) / self.marker).is_file()


def _prepare_config():
    from llmrec.data.prepare import PrepareConfig

    return PrepareConfig


def _run_prepare(config, log=print, progress=True):
    from llmrec.data.prepare import prepare

    return prepare(config, log=log)


def _retrieve_config():
    from llmrec.retrieval import RetrievalConfig

    return RetrievalConfig


def _run_retrieve(config, log=print, progress=True):
    from llmrec.retrieval import retrieve

    return retrieve(config, log=log, progress=progress)


def _summarize_config():
    from llmrec.summarize import SummarizeConfig

    return SummarizeConfig


def _run_summarize(config, log=print, progress=True):
    from llmrec.summarize import summarize

    return summarize(config, log=log, progress=progress)


def _train_config():
    from llmrec.train import TrainConfig

    return TrainConfig


def _run_train(config, log=print, progress=True):
    from llmrec.train.run import train

    return train(config, log=log, progress=progress)


def _check_train(config):
    from llmrec.train.run import check_train

    return check_train(config)


def _evaluate_config():
    from llmrec.evaluate import EvaluateConfig

    return EvaluateConfig


def _run_evaluate(config, log=print, progress=True):
    from llmrec.evaluate import evaluate

    return evaluate(config, log=log, progress=progress)


def _check_evaluate(config):
    from llmrec.evaluate import check_evaluate

    return check_evaluate(config)


def _baseline_config():
    from llmrec.baselines.config import BaselineConfig

    return BaselineConfig


def _run_baseline(config, log=print, progress=True):
    from llmrec.baselines.run import run_baseline

    return run_baseline(config, log=log, progress=progress)


def _check_baseline(config):
    from llmrec.baselines.run import check_baseline

    return check_baseline(config)


STEP_KINDS: dict[str, StepKind] = {k.name: k for k in (
    StepKind("prepare", _prepare_config, "out", _run_prepare, marker="meta.json", transient=("overwrite",)),
    StepKind("retrieve", _retrieve_config, "out", _run_retrieve, marker="meta.json", transient=("overwrite",)),
    StepKind("summarize", _summarize_config, "out", _run_summarize, marker="meta.json",
             transient=("overwrite", "checkpoint_every")),
    StepKind("train", _train_config, "run_dir", _run_train, _check_train),
    StepKind("evaluate", _evaluate_config, "run_dir", _run_evaluate, _check_evaluate,
             transient=("resume", "checkpoint_every")),
    StepKind("baseline", _baseline_config, "run_dir", _run_baseline, _check_baseline),
)}
