"""Experiment tracking: runs reported where users already look (MLflow, TensorBoard), besides the run folder.

``tracking: {mlflow: true}`` in a train / evaluate / baseline config or an experiment file (``--track mlflow``
on the command line) logs each run's resolved config, metrics with their 95% intervals, training curves and
the run folder's files; ``tracking: {tensorboard: true}`` writes event files to ``<run>/tensorboard``. Off by
default; ``pip install 'llmrec[tracking]'``. See docs/tracking.md.

>>> from llmrec.tracking import TRACKERS
>>> list(TRACKERS)
['mlflow', 'tensorboard']
"""

from llmrec.tracking.base import (
    DEFAULT_MLFLOW_URI,
    TRACKERS,
    RunInfo,
    Tracker,
    TrackerSpec,
    Tracking,
    TrackingError,
    TrackingSettings,
    experiment_scope,
    flatten,
    metric_name,
    register_tracker,
    result_metrics,
    run_key,
    start_tracking,
)
from llmrec.tracking.mlflow_tracker import MlflowTracker  # registers "mlflow" (mlflow is imported when a run starts)
from llmrec.tracking.tensorboard_tracker import TensorBoardTracker  # registers "tensorboard"

__all__ = ["DEFAULT_MLFLOW_URI", "TRACKERS", "MlflowTracker", "RunInfo", "TensorBoardTracker", "Tracker", "TrackerSpec", "Tracking", "TrackingError",
           "TrackingSettings", "experiment_scope", "flatten", "metric_name", "register_tracker", "result_metrics",
           "run_key", "start_tracking"]
