"""The tracker interface, its registry, and :class:`Tracking`: what a command holds while a run is tracked.

A tracker (MLflow, TensorBoard) has five calls: ``start`` (open or reuse its run), ``log_params``,
``log_metrics`` (with a step: training curves), ``log_artifacts`` (files of the run folder) and ``end``.
:class:`Tracking` fans each call out to the enabled trackers and turns a tracker's failure into one warning
line (the run goes on; that tracker is dropped for the rest of the command), or an error under ``strict``.

A command tracks like this (the run folder is written before anything is sent)::

    tracking = start_tracking(config.tracking, run.path, command="evaluate", identity=identity, log=log)
                                          # the run opened (or found by the folder's key), config.yaml as params
    ...                                   # live points: tracking.log_metrics({"train/loss": 0.7}, step=3)
    tracking.finish(result, curves=...)   # metrics + intervals, curves, artifacts, end

and a finished folder met again (a command re-run, or a done step of ``llmrec run``) goes straight to
``finish``: a tracker that already has the run (a finished MLflow run with the folder's key) skips it, so
turning tracking on later logs the runs already made, and nothing is logged twice.

>>> s = TrackingSettings(mlflow=True)
>>> s.enabled(), s.mlflow_uri({})
(['mlflow'], 'sqlite:///mlflow.db')
>>> s.mlflow_uri({"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
'http://mlflow:5000'
>>> TrackingSettings(mlflow=True, uri="sqlite:///t.db").mlflow_uri({"MLFLOW_TRACKING_URI": "http://x"})
'sqlite:///t.db'
>>> TrackingSettings().enabled()
[]
>>> flatten({"model": {"name": "m", "dtype": None}, "mix_data": ["a", "b"], "lora": {"r": 8}})
{'model.name': 'm', 'model.dtype': 'None', 'mix_data': '["a", "b"]', 'lora.r': '8'}
>>> metric_name("recall@3"), metric_name("valid/ndcg@10")
('recall_at_3', 'valid/ndcg_at_10')
>>> result_metrics({"auc": 0.7, "ci95": {"auc": [0.6, 0.8]}, "ci95_by_user": {"auc": [0.55, 0.85]}, "users": 9})
{'auc': 0.7, 'auc_ci_low': 0.6, 'auc_ci_high': 0.8, 'auc_ci_user_low': 0.55, 'auc_ci_user_high': 0.85, 'users': 9.0}
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from llmrec.distributed import world
from llmrec.errors import ConfigError, LlmrecError
from llmrec.registry import Registry

__all__ = ["DEFAULT_MLFLOW_URI", "TRACKERS", "RunInfo", "Tracker", "TrackerSpec", "Tracking", "TrackingError",
           "TrackingSettings", "experiment_scope", "flatten", "metric_name", "register_tracker", "result_metrics",
           "run_key", "start_tracking"]

INSTALL = "pip install 'llmrec[tracking]'"

# MLflow's own default store (a SQLite file in the current folder; artifacts in ./mlruns)
DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"


class TrackingSettings(BaseModel):
    """Where a run is reported besides its run folder (off by default; ``--track mlflow`` on the command line).

    The run folder is always written first; a tracker that fails (a server that is down) costs a warning
    line, not the run, unless ``strict`` is set.
    """

    model_config = ConfigDict(extra="forbid")

    mlflow: bool = Field(False, description="log the run to MLflow: resolved config (params), metrics with their "
                         "95% intervals, training curves, the run folder's files (artifacts)")
    tensorboard: bool = Field(False, description="write TensorBoard event files to <run>/tensorboard (training "
                              "curves while training runs, the final metrics)")
    uri: str | None = Field(None, description="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                            f"{DEFAULT_MLFLOW_URI} in the current folder)")
    experiment: str | None = Field(None, description="MLflow experiment name (default: the experiment's name in "
                                   "llmrec run, else llmrec-<command>)")
    strict: bool = Field(False, description="a tracking failure fails the command (default: a warning line)")
    artifact_limit_mb: float = Field(50.0, ge=0, description="files larger than this (predictions of a big split) "
                                     "are not uploaded as artifacts")

    def enabled(self) -> list[str]:
        """The trackers this section turns on, in registry order."""
        return [name for name in TRACKERS if getattr(self, name, False)]

    def mlflow_uri(self, environ: Mapping[str, str] | None = None) -> str:
        """The MLflow tracking URI: this section's ``uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite default."""
        environ = os.environ if environ is None else environ
        return self.uri or environ.get("MLFLOW_TRACKING_URI") or DEFAULT_MLFLOW_URI

    def check(self) -> None:
        """Every enabled tracker's packages are installed (a one-line ConfigError naming the extra otherwise)."""
        for name in self.enabled():
            TRACKERS[name].check(self)


class TrackingError(LlmrecError):
    """A tracker failed and ``tracking.strict`` is set."""


@dataclass(frozen=True)
class RunInfo:
    """What a tracker knows of the run it reports."""

    folder: Path  # the run folder (absolute)
    name: str  # the run's name in the tracker: the run folder as given
    key: str  # stable id of this run folder (path + config identity): a resumed run finds its tracker run by it
    command: str  # train, evaluate, baseline, experiment
    experiment: str  # MLflow experiment: tracking.experiment, the experiment's name, or llmrec-<command>
    tags: dict[str, str] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)  # tracker name -> the experiment's run id there
    reopen: bool = False  # a finished tracker run with the key is continued (an experiment's table grows)


class Tracker(Protocol):
    """One place runs are reported to."""

    def start(self, info: RunInfo) -> bool:
        """Open the run (or find it by ``info.key``); False when it already holds the finished run (skip it)."""

    def log_params(self, params: Mapping[str, str]) -> None:
        ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        ...

    def log_artifacts(self, files: list[tuple[Path, str]]) -> None:
        """``(file, folder in the run's artifacts)`` pairs."""

    def end(self) -> None:
        ...


@dataclass(frozen=True)
class TrackerSpec:
    """A registered tracker: how it is made and what it needs installed."""

    name: str
    make: Callable[[TrackingSettings], Tracker]
    packages: tuple[str, ...]  # import names it needs (checked before a run starts)
    description: str = ""
    history: bool = True  # takes training curves read back from the run folder at the end, skipping the points it
    # holds (MLflow); False: only the points logged while training runs (TensorBoard writes its events as they come)
    extra_packages: Callable[[TrackingSettings], tuple[str, ...]] | None = None  # more, by settings (a SQL store)

    def check(self, settings: TrackingSettings) -> None:
        needed = [*self.packages, *(self.extra_packages(settings) if self.extra_packages else ())]
        missing = [p for p in needed if importlib.util.find_spec(p) is None]
        if missing:
            raise ConfigError(f"tracking.{self.name}: needs {', '.join(missing)}, not installed; {INSTALL}")


TRACKERS: Registry[TrackerSpec] = Registry("tracker", key="tracking", describe=lambda t: t.description)


def register_tracker(spec: TrackerSpec) -> TrackerSpec:
    """Add (or replace) a tracker under its name (``tracking.<name>: true``, ``--track <name>``)."""
    return TRACKERS.register(spec, spec.name)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"a.b": "value"}`` (lists as JSON, None as ``None``): MLflow params."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple, Mapping)):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = str(value)
    return out


def metric_name(name: str) -> str:
    """A metric name every tracker takes (MLflow refuses ``@``): ``recall@3`` -> ``recall_at_3``."""
    return re.sub(r"[^\w./\- ]", "_", name.replace("@", "_at_"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def result_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a metrics.json's ``metrics`` section, each 95% interval as ``<m>_ci_low`` / ``<m>_ci_high``
    (``_ci_user_*``: the interval resampling users)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key in ("ci95", "ci95_by_user") and isinstance(value, Mapping):
            tail = "_ci" if key == "ci95" else "_ci_user"
            for m, bounds in value.items():
                if isinstance(bounds, (list, tuple)) and len(bounds) == 2:
                    for side, bound in zip(("low", "high"), bounds):
                        if _number(bound) is not None:
                            out[metric_name(f"{prefix}{m}{tail}_{side}")] = float(bound)
        elif _number(value) is not None:
            out[metric_name(f"{prefix}{key}")] = _number(value)
    return out


def numbers(section: Mapping[str, Any] | None, prefix: str) -> dict[str, float]:
    """The finite numbers of a flat section (run facts, training facts) as metrics named ``<prefix><key>``.

    >>> numbers({"samples": 200, "model": "m", "ok": True, "s": None}, "run/")
    {'run/samples': 200.0}
    """
    return {metric_name(prefix + k): _number(v) for k, v in (section or {}).items() if _number(v) is not None}


def run_key(folder: str | Path, identity: Any) -> str:
    """A run folder's key: its absolute path and its config identity (a resumed run has the same key; the same
    folder reused for another config, or another folder, has another).

    >>> run_key("/tmp/r", {"a": 1}) == run_key("/tmp/r", {"a": 1}) != run_key("/tmp/r", {"a": 2})
    True
    """
    text = json.dumps({"folder": str(Path(folder).resolve()), "identity": identity}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# the experiment a run belongs to while ``llmrec run`` runs its steps: its name and its own run in each tracker
_SCOPE: ContextVar[tuple[str, dict[str, str]] | None] = ContextVar("llmrec_tracking_scope", default=None)


@contextmanager
def experiment_scope(name: str, parents: Mapping[str, str] | None = None) -> Iterator[None]:
    """Runs started inside are filed under the experiment ``name`` (unless their ``tracking.experiment`` says
    otherwise) and, in MLflow, nested under the experiment's run (``parents``: tracker -> run id)."""
    token = _SCOPE.set((name, dict(parents or {})))
    try:
        yield
    finally:
        _SCOPE.reset(token)


class Tracking:
    """The enabled trackers of one run (none: every call does nothing)."""

    def __init__(self, settings: TrackingSettings | None = None, trackers: dict[str, Tracker] | None = None,
                 info: RunInfo | None = None, log: Callable[[str], None] = print) -> None:
        self.settings = settings or TrackingSettings()
        self.trackers = dict(trackers or {})
        self.info = info
        self.log = log
        self.logged: dict[str, int] = {}  # metric -> the last step logged live in this session

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def _each(self, what: str, call: Callable[[str, Tracker], Any], names: list[str] | None = None) -> None:
        for name in list(names if names is not None else self.trackers):
            tracker = self.trackers.get(name)
            if tracker is None:
                continue
            try:
                call(name, tracker)
            except Exception as exc:  # a tracker's failure never costs the run (the folder is already written)
                self._failed(name, what, exc)

    def _failed(self, name: str, what: str, exc: BaseException) -> None:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f" at {self.settings.mlflow_uri()}" if name == "mlflow" else ""
        message = f"tracking: {name}{where} failed to {what} ({type(exc).__name__}: {detail[:300]})"
        self.trackers.pop(name, None)
        if self.settings.strict:
            raise TrackingError(f"{message}; the run folder is written ({self.info.folder if self.info else '?'})")
        self.log(f"warning: {message}; the run goes on without it (the run folder has everything; run the same "
                 "command again later to log it)")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Live points (training curves) at ``step``."""
        clean = {metric_name(k): float(v) for k, v in metrics.items() if _number(v) is not None}
        if not clean or not self.trackers:
            return
        for k in clean:
            self.logged[k] = max(self.logged.get(k, -1), int(step))
        self._each("log metrics", lambda _n, t: t.log_metrics(clean, int(step)))

    def finish(self, result: Mapping[str, Any], *, curves: list[tuple[int, dict[str, float]]] = (),
               metrics: Mapping[str, float] | None = None, artifacts: list[str] = ()) -> None:
        """Send a finished run: the result's metrics with their intervals and run facts, ``curves``
        (``(step, {name: value})`` read back from the folder; a tracker with ``history`` takes the points it does
        not have yet), ``metrics`` (more final values), and the files ``artifacts`` (names in the run folder;
        folders whole: config.yaml and metrics.json always), then end the run."""
        if not self.trackers or self.info is None:
            return
        folder = self.info.folder
        final = {**result_metrics(result.get("metrics") or {}), **numbers(result.get("run"), "run/"),
                 **numbers(result.get("cost"), "cost/"),
                 **{metric_name(k): float(v) for k, v in (metrics or {}).items() if _number(v) is not None}}
        files = self._artifacts(folder, ["config.yaml", "metrics.json", *artifacts])
        history = [n for n in self.trackers if TRACKERS[n].history]
        for step, points in curves:  # a tracker with history skips the points it holds (logged live, or before)
            points = {metric_name(k): float(v) for k, v in points.items() if _number(v) is not None}
            if points:
                self._each("log metrics", lambda _n, t, p=points, s=step: t.log_metrics(p, int(s)), history)
        last = max([int(s) for s, _ in curves] + list(self.logged.values()) + [0])
        if final:
            self._each("log metrics", lambda _n, t: t.log_metrics(final, last))
        self._each("log artifacts", lambda _n, t: t.log_artifacts(files))
        names = list(self.trackers)
        self._each("end the run", lambda _n, t: t.end())
        if names:
            self.log(f"tracking: {self.info.name} logged to {', '.join(self._where(n) for n in names)}")

    def _where(self, name: str) -> str:
        where = getattr(self.trackers.get(name), "where", None)
        return f"{name} ({where})" if where else name

    def _artifacts(self, folder: Path, names: list[str]) -> list[tuple[Path, str]]:
        """The files of ``names`` under ``folder`` (folders expanded) that exist and fit the size limit, each with
        its folder inside the artifacts; a line for every file left out for its size."""
        limit = self.settings.artifact_limit_mb * 2**20
        out: list[tuple[Path, str]] = []
        for name in dict.fromkeys(names):
            path = folder / name
            found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for p in found:
                if not p.is_file():
                    continue
                if p.stat().st_size > limit:
                    self.log(f"tracking: {p} ({p.stat().st_size / 2**20:.1f} MB) is not uploaded "
                             f"(over tracking.artifact_limit_mb = {self.settings.artifact_limit_mb:g})")
                    continue
                parent = p.parent.relative_to(folder).as_posix()
                out.append((p, "" if parent == "." else parent))
        return out


def _folder_config(folder: Path) -> dict[str, Any]:
    """A run folder's config.yaml without its identity record and its tracking section (the params)."""
    import yaml

    try:
        data = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {k: v for k, v in data.items() if not k.startswith("_") and k != "tracking"} if isinstance(data, dict) else {}


def start_tracking(settings: TrackingSettings | None, folder: str | Path, *, command: str, identity: Any = None,
                   key: str | None = None, tags: Mapping[str, Any] | None = None,
                   params: Mapping[str, Any] | None = None, reopen: bool = False,
                   log: Callable[[str], None] = print) -> Tracking:
    """Open the run folder's run in every enabled tracker (in the main process only) and log its resolved config
    (config.yaml, nested keys flattened) as params; trackers that already hold the finished run are left out.
    Call it after the run folder exists. ``params`` replaces config.yaml; ``reopen`` continues a finished tracker
    run (an experiment's own run, whose table grows seed by seed)."""
    settings = settings or TrackingSettings()
    names = settings.enabled()
    if not names or not world().main:
        return Tracking(settings, log=log)
    path = Path(folder)
    scope = _SCOPE.get()
    experiment = settings.experiment or (scope[0] if scope else f"llmrec-{command}")
    info = RunInfo(folder=path.resolve(), name=str(folder), key=key or run_key(path, identity), command=command,
                   experiment=experiment, tags={str(k): str(v) for k, v in (tags or {}).items() if v is not None},
                   parent=dict(scope[1]) if scope else {}, reopen=reopen)
    tracking = Tracking(settings, {}, info, log)
    for name in names:
        spec = TRACKERS[name]
        try:
            tracker = spec.make(settings)
            if tracker.start(info):
                tracking.trackers[name] = tracker
        except Exception as exc:  # a server that is down: a warning line (strict: an error)
            tracking.trackers[name] = None  # type: ignore[assignment]
            tracking._failed(name, "start the run", exc)
    params = flatten(_folder_config(path) if params is None else params)
    tracking._each("log params", lambda _n, t: t.log_params(params))
    return tracking
