"""Experiments: steps (prepare, retrieve, summarize, train, evaluate, baseline) -> run folders -> a table.

See :mod:`llmrec.experiments.table` for the file format and :mod:`llmrec.experiments.engine` for
what is skipped, resumed or redone. ``SuiteConfig``, ``SuiteRow``, ``load_suite`` and ``run_suite`` are
the deprecated names of :class:`ExperimentConfig`, :class:`Step`, :func:`load_experiment` and
:func:`run_experiment`.
"""

from llmrec.experiments.config import (
    Curve,
    ExperimentConfig,
    Pairing,
    PaperNumbers,
    Step,
    SuiteConfig,
    SuiteRow,
    load_experiment,
    load_suite,
)
from llmrec.experiments.engine import PlannedRun, plan_experiment, run_steps
from llmrec.experiments.table import run_experiment, run_suite, write_table

__all__ = ["Curve", "ExperimentConfig", "Pairing", "PaperNumbers", "PlannedRun", "Step", "load_experiment",
           "plan_experiment", "run_experiment", "run_steps", "write_table",
           # deprecated names
           "SuiteConfig", "SuiteRow", "load_suite", "run_suite"]
