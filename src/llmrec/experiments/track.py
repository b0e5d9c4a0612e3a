"""An experiment's own tracker run (``tracking:`` in the experiment file, ``llmrec run --track mlflow``).

While the steps run, every train / evaluate / baseline run is filed under the experiment's name and, in
MLflow, nested under one run of the experiment itself (named after its output folder, found again by it),
which holds the table (the mean of each metric of each row, ``<row>/<metric>``, at a step that counts the
finished runs, so a table growing seed by seed is a curve), ``table.md`` / ``table.json``, the curves and,
from ``llmrec run``, the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmrec.experiments.config import ExperimentConfig
from llmrec.tracking import Tracking, experiment_scope, metric_name, run_key, start_tracking

__all__ = ["experiment_tracking", "log_experiment_files"]


def _open(experiment: ExperimentConfig, out: Path, log: Callable[[str], None]) -> Tracking:
    """The experiment's own run (MLflow only: TensorBoard events belong to the runs that train)."""
    settings = experiment.tracking.model_copy(update={"tensorboard": False,
                                                      "experiment": experiment.tracking.experiment or experiment.name})
    # params never change for a run (MLflow refuses another value): what names the run only; the steps and the
    # description (which an edited file changes) are tags, set when the run is created
    tags = {"mlflow.note.content": experiment.description, "llmrec.steps": ", ".join(
        f"{s.name}: {s.kind}" for s in experiment.steps)}
    return start_tracking(settings, out, command="experiment", key=run_key(out, {"experiment": experiment.name}),
                          params={"experiment": experiment.name, "out": str(out)}, tags=tags, reopen=True, log=log)


@contextmanager
def experiment_tracking(experiment: ExperimentConfig, out: str | Path,
                        log: Callable[[str], None] = print) -> Iterator[Tracking]:
    """Runs started inside are filed under the experiment (and nested under its MLflow run); yields that run."""
    out = Path(out)
    parent = _open(experiment, out, log)
    ids = {name: t.run_id for name, t in parent.trackers.items() if getattr(t, "run_id", None)}
    with experiment_scope(experiment.tracking.experiment or experiment.name, ids):
        yield parent


def table_points(table: dict[str, Any]) -> tuple[int, dict[str, float]]:
    """(finished runs, ``{<row>/<metric>: mean, <row>/<metric>_std: std}``) of an experiment's table.

    >>> table_points({"rows": {"lora": {"runs": 2, "auc": {"mean": 0.7, "std": 0.01}}, "zs": {"runs": 1}}})
    (3, {'lora/auc': 0.7, 'lora/auc_std': 0.01})
    """
    points: dict[str, float] = {}
    runs = 0
    for row, entry in table.get("rows", {}).items():
        runs += int(entry.get("runs", 0))
        for metric, cell in entry.items():
            if isinstance(cell, dict) and "mean" in cell:
                points[metric_name(f"{row}/{metric}")] = float(cell["mean"])
                points[metric_name(f"{row}/{metric}_std")] = float(cell["std"])
    return runs, points


def log_experiment_files(experiment: ExperimentConfig, out: str | Path, files: list[str], *,
                         parent: Tracking | None = None, table: dict[str, Any] | None = None,
                         log: Callable[[str], None] = print) -> None:
    """Send ``files`` of the experiment folder (and the table's values) to the experiment's run; ``parent``: the
    run :func:`experiment_tracking` yielded (else it is found again by the folder)."""
    if not experiment.tracking.mlflow:
        return
    out = Path(out)
    parent = parent if parent is not None else _open(experiment, out, log)
    curves = [table_points(table)] if table else []
    parent.finish({}, curves=curves, artifacts=[f for f in files if (out / f).exists()])
