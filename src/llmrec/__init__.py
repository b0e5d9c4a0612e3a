"""llmrec: turn a causal language model into a recommender.

The package is organised as a one-way pipeline (see ``docs/architecture.md``)::

    datasets -> samples -> prompts -> (retrieve | summarize) -> model -> metrics -> report

The public API is the functions of the commands and their configs, imported on first use
(``import llmrec`` loads no model library); ``docs/api.md`` lists them::

    import llmrec

    data, folder, _ = llmrec.prepare(llmrec.PrepareConfig(dataset="ml-100k", protocol="tallrec"))
    zero_shot, _ = llmrec.evaluate(llmrec.EvaluateConfig(data=str(folder), limit=200))
    tuned, _ = llmrec.train(llmrec.TrainConfig(data=str(folder), train_samples=64))
    print(llmrec.compare([zero_shot, tuned]))

>>> import llmrec
>>> isinstance(llmrec.__version__, str)
True
>>> llmrec.EvaluateConfig(data="prepared/ml-100k-tallrec").split
'test'
>>> "run_experiment" in dir(llmrec)
True
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("llmrec")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

# public name -> "module:attribute", imported when the name is first used (strings: nothing heavy at import)
_API: dict[str, str] = {
    "prepare": "llmrec.data.prepare:prepare",
    "load": "llmrec.data.prepared:PreparedData.load",
    "retrieve": "llmrec.retrieval.transform:retrieve",
    "summarize": "llmrec.summarize.transform:summarize",
    "evaluate": "llmrec.evaluate:evaluate",
    "train": "llmrec.train.run:train",
    "baseline": "llmrec.baselines.run:run_baseline",
    "run_experiment": "llmrec.experiments.table:run_experiment",
    "plan": "llmrec.experiments.resources:plan_file",
    "rehearse": "llmrec.experiments.rehearsal:rehearse",
    "report": "llmrec.report.render:build_report",
    "compare": "llmrec.tables:compare_table",
    "PrepareConfig": "llmrec.data.prepare:PrepareConfig",
    "RetrievalConfig": "llmrec.retrieval.config:RetrievalConfig",
    "SummarizeConfig": "llmrec.summarize.config:SummarizeConfig",
    "EvaluateConfig": "llmrec.evaluate:EvaluateConfig",
    "TrainConfig": "llmrec.train.config:TrainConfig",
    "BaselineConfig": "llmrec.baselines.config:BaselineConfig",
    "ExperimentConfig": "llmrec.experiments.config:ExperimentConfig",
    "ModelConfig": "llmrec.llm.settings:ModelConfig",
}

__all__ = ["__version__", *_API]

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports on first use
    from llmrec.baselines.config import BaselineConfig
    from llmrec.baselines.run import run_baseline as baseline
    from llmrec.data.prepare import PrepareConfig, prepare
    from llmrec.data.prepared import PreparedData
    from llmrec.evaluate import EvaluateConfig, evaluate
    from llmrec.experiments.config import ExperimentConfig
    from llmrec.experiments.rehearsal import rehearse
    from llmrec.experiments.resources import plan_file as plan
    from llmrec.experiments.table import run_experiment
    from llmrec.llm.settings import ModelConfig
    from llmrec.report.render import build_report as report
    from llmrec.retrieval.config import RetrievalConfig
    from llmrec.retrieval.transform import retrieve
    from llmrec.summarize.config import SummarizeConfig
    from llmrec.summarize.transform import summarize
    from llmrec.tables import compare_table as compare
    from llmrec.train.config import TrainConfig
    from llmrec.train.run import train

    load = PreparedData.load


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'llmrec' has no attribute {name!r}")
    module, _, path = target.partition(":")
    value: Any = importlib.import_module(module)
    for part in path.split("."):
        value = getattr(value, part)
    globals()[name] = value  # the next lookup finds it directly
    return value


def __dir__() -> list[str]:
    """The public names (what ``from llmrec import *`` gives), for completion and ``help``."""
    return sorted(__all__)


class _Package(ModuleType):
    """``llmrec`` itself. Four public functions share their names with submodules (``evaluate``,
    ``train``, ``summarize``, ``report``); importing such a submodule would make the attribute the
    module, so here it stays the function (the submodule is in ``sys.modules`` as usual:
    ``from llmrec.evaluate import EvaluateConfig`` works; ``import llmrec.evaluate as m`` gives the function)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
