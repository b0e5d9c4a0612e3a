"""Experiments: steps (prepare, retrieve, summarize, train, evaluate, baseline) -> run folders -> a table.

See :mod:`llmrec.experiments.table` for the file format and :mod:`llmrec.experiments.engine` for
what is skipped, resumed or redone.
"""

from llmrec.experiments.config import Curve, Pairing, PaperNumbers, SuiteConfig, SuiteRow
from llmrec.experiments.engine import PlannedRun, plan_experiment, run_experiment
from llmrec.experiments.table import load_suite, run_suite, write_table

__all__ = ["Curve", "Pairing", "PaperNumbers", "PlannedRun", "SuiteConfig", "SuiteRow", "load_suite", "plan_experiment",
           "run_experiment", "run_suite", "write_table"]
