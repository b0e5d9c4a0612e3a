"""The MLflow tracker (``pip install 'llmrec[tracking]'``): one MLflow run per run folder, found again by its key.

The run is tagged ``llmrec.key`` (the run folder's path and config identity, :func:`~llmrec.tracking.base.run_key`):
a resumed run (after a kill) reopens the same MLflow run and logs only the points it does not hold yet
(per metric, the steps it has no value at: the points of the killed attempt are not repeated, and the ones it
lost are filled in from the run folder at the end); a finished MLflow run with the key is not logged again.
Runs of an experiment are nested under the experiment's own run (tag ``mlflow.parentRunId``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from llmrec.tracking.base import RunInfo, TrackerSpec, TrackingSettings, register_tracker

__all__ = ["MlflowTracker", "find_run"]

KEY_TAG = "llmrec.key"
_BATCH = 500  # metrics per log_batch call (MLflow takes at most 1000)
_FLUSH_S = 5.0  # live points are sent at least this often


def find_run(client, experiment_id: str, key: str):
    """The newest active MLflow run tagged with ``key`` in the experiment (None: none)."""
    runs = client.search_runs([experiment_id], f"tags.`{KEY_TAG}` = '{key}'", max_results=1,
                              order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


def experiment_id(client, name: str) -> str:
    """The id of the experiment ``name``, created (or restored from the trash) when needed."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # created meanwhile by another process
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class MlflowTracker:
    """Logs to the MLflow tracking store at ``uri`` through ``MlflowClient`` (no global MLflow state is touched)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = None
        self.run_id: str | None = None
        self.where = uri
        self.steps: dict[str, set[int]] = {}  # metric -> the steps the MLflow run holds a value at
        self.pending: list = []
        self.flushed = time.monotonic()

    def start(self, info: RunInfo) -> bool:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(self.uri)
        exp = experiment_id(self.client, info.experiment)
        found = find_run(self.client, exp, info.key)
        if found is not None and found.info.status == "FINISHED" and not info.reopen:
            return False
        if found is not None:  # a run killed or stopped before: continue it
            self.run_id = found.info.run_id
            for name in found.data.metrics:
                self.steps[name] = {m.step for m in self.client.get_metric_history(self.run_id, name)}
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            tags = {KEY_TAG: info.key, "llmrec.folder": str(info.folder), "llmrec.command": info.command,
                    "mlflow.source.name": f"llmrec {info.command}", "mlflow.source.type": "LOCAL", **info.tags}
            if info.parent.get("mlflow"):
                tags["mlflow.parentRunId"] = info.parent["mlflow"]
            self.run_id = self.client.create_run(exp, run_name=info.name, tags=tags).info.run_id
        self.where = f"{self.uri}, experiment {info.experiment!r}, run {self.run_id}"
        return True

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for name, value in metrics.items():
            held = self.steps.setdefault(name, set())
            if int(step) not in held:  # the MLflow run does not hold this point yet
                self.pending.append(Metric(name, float(value), now, int(step)))
                held.add(int(step))
        if len(self.pending) >= _BATCH or time.monotonic() - self.flushed >= _FLUSH_S:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            self.client.log_batch(self.run_id, metrics=self.pending[:_BATCH])
            del self.pending[:_BATCH]
        self.flushed = time.monotonic()

    def log_artifacts(self, files: list[tuple[Path, str]]) -> None:
        self.flush()
        for path, folder in files:
            self.client.log_artifact(self.run_id, str(path), artifact_path=folder or None)

    def end(self) -> None:
        self.flush()
        self.client.set_terminated(self.run_id, "FINISHED")


def _sql_packages(settings: TrackingSettings) -> tuple[str, ...]:
    """A database store (the SQLite default) needs SQLAlchemy and Alembic besides mlflow-skinny."""
    scheme = settings.mlflow_uri().split(":", 1)[0].split("+", 1)[0].lower()
    return ("sqlalchemy", "alembic") if scheme in ("sqlite", "postgresql", "mysql", "mssql") else ()


register_tracker(TrackerSpec("mlflow", lambda settings: MlflowTracker(settings.mlflow_uri()), ("mlflow",),
                             "MLflow: params, metrics with intervals, curves, artifacts (tracking.uri; default "
                             "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)", extra_packages=_sql_packages))
