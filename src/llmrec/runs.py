"""Run directories: config, predictions, metrics and plots of one run, resumable.

Layout of ``runs/<name>/``::

    config.yaml              the resolved config (reloadable with --config)
    predictions.partial.jsonl  scored so far (appended batch by batch; removed when done)
    predictions.parquet      all predictions (written at the end, atomically)
    metrics.json             metrics and run facts (model, timings; ``cost``: training and scoring time, machine)
    plots/*.png              ROC curve, score histograms / rank histogram

A run is *finished* when ``metrics.json`` exists. An interrupted run restarts where it
stopped: the partial file is read back (a torn last line is ignored) and only the missing
samples are scored. The folder is created only after every cheap check has passed, and a
folder that holds nothing but its config (a run that never started) may be reused with
another config.

The records of finished runs are read here too (``load_metrics``, ``row_metrics``, the ``seed-N``
folders of a ``--seeds`` run or an experiment row); ``llmrec.tables`` formats them into cells and tables.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from llmrec.errors import ConfigError, LlmrecError
from llmrec.io import write_json, write_text


class Pace:
    """How much work to do before the next journal write: at most ``every`` units, and no more than the last
    piece's rate says fit in ``seconds`` (the first piece, before any rate is known: ``first`` units), so a kill
    loses at most about ``seconds`` of work however slow the model (evaluate's partial predictions, summarize's
    journal). ``seconds`` None: every ``every`` units only.

    >>> pace = Pace(every=64, seconds=30.0, first=8)
    >>> pace.next()
    8
    >>> pace.done(8, 4.0); pace.next()  # 2 units/s: 60 fit in 30 s
    60
    >>> pace.done(60, 6.0); pace.next()  # 10 units/s: capped at every
    64
    >>> Pace(every=64, seconds=None).next()
    64
    """

    def __init__(self, every: int, seconds: float | None, first: int = 8) -> None:
        self.every, self.seconds = every, seconds
        self.size = every if seconds is None else max(1, min(every, first))

    def next(self) -> int:
        return self.size

    def done(self, units: int, elapsed: float) -> None:
        """Record a finished piece of ``units`` that took ``elapsed`` seconds."""
        if self.seconds is not None and units > 0:
            rate = units / max(elapsed, 1e-9)
            self.size = int(max(1, min(self.every, rate * self.seconds)))


class RunDir:
    """One run's folder (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def default_name(*parts: str) -> str:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return "-".join([stamp, *[p for p in parts if p]])

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def partial_path(self) -> Path:
        return self.path / "predictions.partial.jsonl"

    @property
    def finished(self) -> bool:
        return (self.path / "metrics.json").exists()

    @classmethod
    def open(cls, path: str | Path, config: dict[str, Any], identity: dict[str, Any], *, resume: bool = True,
             log=print) -> tuple[RunDir, dict[str, Any] | None]:
        """Start or resume the run in ``path``; returns (run, its result when it is already finished)."""
        run = cls(path)
        run.start(config, identity, resume=resume)
        if run.finished:
            log(f"{run.path} is finished; metrics.json holds its results")
            return run, load_metrics(run.path)
        return run, None

    def read_config(self) -> dict[str, Any]:
        """The stored config.yaml (a ConfigError naming the file when it is corrupt)."""
        try:
            data = yaml.safe_load(self.config_path.read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.config_path}: corrupt run config ({type(exc).__name__}); delete the run folder "
                              "or pass another --run-dir") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.config_path}: corrupt run config (not a mapping); delete the run folder "
                              "or pass another --run-dir")
        return data

    @property
    def started(self) -> bool:
        """Whether anything besides config.yaml was written (a run that never started holds only that)."""
        return self.path.is_dir() and any(p.name != "config.yaml" and not p.name.startswith(".")
                                          for p in self.path.iterdir())

    def start(self, config: dict[str, Any], identity: dict[str, Any], resume: bool = True) -> None:
        """Create the folder, or check that an existing one belongs to the same run."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path}: exists and is not a folder; pass another --run-dir")
        if self.config_path.exists():
            old = self.read_config()
            if _identity(old) != identity:
                if self.started:
                    raise ConfigError(
                        f"{self.path} holds a run with a different config; pass a new --run-dir (or delete the folder)"
                    )
            else:
                if not resume:
                    self.partial_path.unlink(missing_ok=True)
                return
        elif self.started:
            raise ConfigError(f"{self.path}: not a run folder (files but no config.yaml); pass another --run-dir")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            write_text(self.config_path, yaml.safe_dump({**config, "_identity": identity}, sort_keys=False))
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot create the run folder ({exc.strerror or exc})") from None

    def done(self) -> dict[str, dict[str, Any]]:
        """Predictions already in the partial file, keyed by ``key``; a torn last line is dropped."""
        if not self.partial_path.exists():
            return {}
        raw = self.partial_path.read_bytes()
        complete = raw.rfind(b"\n") + 1
        if complete < len(raw):  # interrupted while writing the last line: cut it off
            with open(self.partial_path, "r+b") as f:
                f.truncate(complete)
        out = {}
        with open(self.partial_path, "rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    rec = json.loads(line.decode("utf-8"))
                    out[rec["key"]] = rec
                except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
                    why = "not a record with a key" if isinstance(exc, (KeyError, TypeError)) else type(exc).__name__
                    raise LlmrecError(f"{self.partial_path}: corrupt line {number} ({why}); delete the file to start "
                                      "over") from None
        return out

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append scored records durably (one JSON line each)."""
        with open(self.partial_path, "a", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finish(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / "metrics.json", metrics)
        self.partial_path.unlink(missing_ok=True)


def machine_info() -> dict[str, object]:
    """CPU model, core count, memory, Python and platform, plus the date (stored with runs and benchmarks)."""
    import platform
    import sys

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "date": _dt.date.today().isoformat(),
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": mem_gib,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


COST_FIELDS = ("train_s", "scoring_s", "samples_per_s")  # what tables show of a run's ``cost``


def run_cost(*, train_s: float | None, scoring_s: float, samples: float, prompts: int | None = None,
             device: str | None = None, resumed: bool = False) -> dict[str, Any]:
    """A run's ``cost`` record (metrics.json): its training wall seconds (0: no training, e.g. zero-shot; left out
    when the training was another run's), the wall seconds of its scoring pass and the samples (lists) it scored
    per second, on this machine (``machine``, ``device``). ``resumed``: a run resumed in this session, whose times
    cover this session only.

    >>> c = run_cost(train_s=0.0, scoring_s=2.0, samples=50, prompts=100)
    >>> c["train_s"], c["scoring_s"], c["samples_per_s"], c["prompts_per_s"], "cpu" in c["machine"]
    (0.0, 2.0, 25.0, 50.0, True)
    >>> "train_s" in run_cost(train_s=None, scoring_s=0.0, samples=0)
    False
    """
    cost: dict[str, Any] = {} if train_s is None else {"train_s": round(float(train_s), 3)}
    cost["scoring_s"] = round(float(scoring_s), 3)
    cost["samples_per_s"] = round(samples / scoring_s, 3) if samples and scoring_s > 0 else None
    if prompts is not None:
        cost["prompts_per_s"] = round(prompts / scoring_s, 3) if prompts and scoring_s > 0 else None
    if resumed:
        cost["resumed"] = True
    cost["device"] = device
    cost["machine"] = machine_info()
    return cost


def run_records(path: str | Path) -> list[dict[str, Any]]:
    """The metrics.json of each run a folder stands for: the run, or the finished ``seed-N`` runs of a ``--seeds``
    folder or an experiment row (for the segments and the ``cost`` of each).

    >>> run_records("runs/no-such-run")
    []
    """
    path = Path(path)
    runs = [path] if (path / "metrics.json").exists() else [p for _, p in seed_folders(path, finished=True)]
    return [load_metrics(p) for p in runs]


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("_identity", {})


def load_metrics(path: str | Path) -> dict[str, Any]:
    """The metrics.json of a finished run (or summary.json of a ``--seeds`` folder); one-line errors
    for missing, corrupt or incomplete files."""
    p = Path(path) / "metrics.json"
    if not p.exists() and (Path(path) / "summary.json").exists():
        p = Path(path) / "summary.json"
    if not Path(path).is_dir():
        raise LlmrecError(f"{path}: no such run folder")
    if not p.exists():
        raise LlmrecError(f"{path}: no metrics.json (unfinished run, or not a run folder)")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise LlmrecError(f"{p}: corrupt metrics file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise LlmrecError(f"{p}: not an llmrec metrics file (no 'metrics' mapping)")
    return data


def numeric_metrics(metrics: dict[str, Any]) -> list[str]:
    """The keys of ``metrics`` holding a number that is a metric (not ``users``, the count behind ``ci95_by_user``).

    >>> numeric_metrics({"auc": 0.7, "ci95": {}, "users": 34, "ok": True, "template": "x"})
    ['auc']
    """
    return [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "users"]


def summarize_values(values: list[float], digits: int | None = 6) -> dict[str, Any]:
    """Mean and standard deviation of one metric over runs (seeds), with the values (mean and std rounded to
    ``digits``; ``None`` keeps them whole).

    A value that is undefined (NaN: AUC of a one-class test subset) is left out of mean and std and counted in
    ``undefined``; it stays in ``values``.

    >>> summarize_values([0.6, 0.7])["mean"]
    0.65
    >>> s = summarize_values([0.6, float("nan")])
    >>> s["mean"], s["std"], s["undefined"]
    (0.6, 0.0, 1)
    """
    values = [float(v) for v in values]
    finite = [v for v in values if np.isfinite(v)]
    mean = float(np.mean(finite)) if finite else float("nan")
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    summary: dict[str, Any] = {"mean": mean if digits is None else round(mean, digits),
                               "std": std if digits is None else round(std, digits), "values": values}
    if len(finite) < len(values):
        summary["undefined"] = len(values) - len(finite)
    return summary


def summarize_seeds(results: list[dict]) -> dict[str, Any]:
    """:func:`summarize_values` of every numeric test metric over seeds.

    >>> summarize_seeds([{"metrics": {"auc": 0.6}}, {"metrics": {"auc": 0.7}}])["auc"]["mean"]
    0.65
    """
    keys = numeric_metrics(results[0]["metrics"])
    return {k: summarize_values([r["metrics"][k] for r in results if k in r["metrics"]]) for k in keys}


def seed_folders(folder: str | Path, finished: bool = False) -> list[tuple[int, Path]]:
    """The ``seed-N`` folders inside ``folder`` (a ``--seeds`` folder, an experiment row) in seed order, with their
    seeds; ``finished``: only those holding a metrics.json."""
    found = [(int(p.name[5:]), p) for p in Path(folder).glob("seed-*") if p.name[5:].isdigit() and p.is_dir()]
    return sorted(f for f in found if not finished or (f[1] / "metrics.json").exists())


def row_metrics(path: str | Path) -> dict[str, Any]:
    """What ``llmrec compare`` shows of a folder: a run's metrics.json, a ``--seeds`` folder's summary.json, or
    else the mean / std over the finished ``seed-N`` runs inside it (an experiment row's folder), read like a
    summary.json; one-line errors as :func:`load_metrics`."""
    path = Path(path)
    if (path / "metrics.json").exists() or (path / "summary.json").exists() or not path.is_dir():
        return load_metrics(path)
    seeds = seed_folders(path, finished=True)
    if not seeds:
        return load_metrics(path)  # the "no metrics.json" error
    results = [load_metrics(p) for _, p in seeds]
    if len(results) == 1:  # one seed: its value and interval
        return {**results[0], "seeds": [seeds[0][0]]}
    stats = summarize_seeds(results)
    return {**{k: results[0].get(k) for k in ("dataset", "protocol", "split", "test", "run")},
            "seeds": [s for s, _ in seeds], "metrics": {k: v["mean"] for k, v in stats.items()},
            "metrics_std": {k: v["std"] for k, v in stats.items()}}


def prompts_tested(run: str | Path) -> Any:
    """The prompts a train run's test scoring (``test/metrics.json``) scored; the first seed's for a folder of
    seed runs; "-" when not there.

    >>> prompts_tested("runs/no-such-run")
    '-'
    """
    run = Path(run)
    for folder in [run, *(q for _, q in seed_folders(run))]:
        try:
            found = json.loads((folder / "test" / "metrics.json").read_text())
            return found["run"]["prompts"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return "-"
