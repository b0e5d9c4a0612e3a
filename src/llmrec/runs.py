"""Run directories: config, predictions, metrics and plots of one run, resumable.

Layout of ``runs/<name>/``::

    config.yaml              the resolved config (reloadable with --config)
    predictions.partial.jsonl  scored so far (appended batch by batch; removed when done)
    predictions.parquet      all predictions (written at the end, atomically)
    metrics.json             metrics and run facts (timings, model, machine)
    plots/*.png              ROC curve, score histograms / rank histogram

A run is *finished* when ``metrics.json`` exists. An interrupted run restarts where it
stopped: the partial file is read back (a torn last line is ignored) and only the missing
samples are scored. The folder is created only after every cheap check has passed, and a
folder that holds nothing but its config (a run that never started) may be reused with
another config.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from llmrec.errors import ConfigError, LlmrecError
from llmrec.io import write_json, write_text


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


BY_USER_MARK = "†"
INTERVAL_NOTE = ("a single run shows its value and 95% bootstrap interval [low, high]; "
                 f"{BY_USER_MARK}: users resampled (some user holds several samples), otherwise samples")


def metric_cell(values: list[float], ci: tuple[float, float] | list[float] | None = None, by_user: bool = False) -> str:
    """One table cell: mean ± std over several runs, or one run's value with its 95% bootstrap interval
    (marked ``†`` when the interval resampled users rather than samples).

    >>> metric_cell([0.71, 0.73])
    '0.7200 ± 0.0141'
    >>> metric_cell([0.7232], (0.70184, 0.74521))
    '0.7232 [0.702, 0.745]'
    >>> metric_cell([0.7232], (0.64, 0.80), by_user=True)
    '0.7232 [0.640, 0.800]†'
    >>> metric_cell([])
    '-'
    """
    if not values:
        return "-"
    if len(values) > 1:
        import statistics

        return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"
    if not ci or len(ci) != 2:
        return f"{values[0]:.4f}"
    return f"{values[0]:.4f} [{ci[0]:.3f}, {ci[1]:.3f}]" + (BY_USER_MARK if by_user else "")


def run_interval(metrics: dict[str, Any], metric: str) -> tuple[tuple[float, float] | None, bool]:
    """A single run's 95% interval of ``metric`` and whether it resampled users: the by-user interval where
    ``metrics.json`` holds one (some user has several samples, which are not independent), else the per-sample one.

    >>> run_interval({"auc": 0.7, "ci95": {"auc": [0.66, 0.74]}, "ci95_by_user": {"auc": [0.6, 0.8]}}, "auc")
    ((0.6, 0.8), True)
    >>> run_interval({"auc": 0.7, "ci95": {"auc": [0.66, 0.74]}}, "auc")
    ((0.66, 0.74), False)
    >>> run_interval({"auc": 0.7}, "auc")
    (None, False)
    """
    for key, by_user in (("ci95_by_user", True), ("ci95", False)):
        table = metrics.get(key)
        ci = table.get(metric) if isinstance(table, dict) else None
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            return (float(ci[0]), float(ci[1])), by_user
    return None, False


def row_cell(metrics: list[dict[str, Any]], metric: str) -> str:
    """A table row's cell from its runs' ``metrics``: mean ± std over several runs, or the single run's value with
    its interval (``run_interval``: by user where recorded).

    >>> row_cell([{"auc": 0.71}, {"auc": 0.73}], "auc")
    '0.7200 ± 0.0141'
    >>> row_cell([{"auc": 0.7, "ci95": {"auc": [0.66, 0.74]}, "ci95_by_user": {"auc": [0.6, 0.8]}}], "auc")
    '0.7000 [0.600, 0.800]†'
    """
    values = [float(m[metric]) for m in metrics if isinstance(m.get(metric), (int, float))]
    ci, by_user = run_interval(metrics[0], metric) if len(metrics) == 1 else (None, False)
    return metric_cell(values, ci, by_user)


def paper_columns(metrics: list[str], paper_metrics: Iterable[str]) -> tuple[list[str], list[str]]:
    """The paper's columns of a table: its metrics in the table's own order (any other after, sorted), and their
    headers (``paper <metric>``; the table names the paper once, below it).

    >>> paper_columns(["recall@3", "recall@10", "mrr@3", "mrr@10"], {"mrr@10", "recall@3", "mrr@3", "recall@10"})
    (['recall@3', 'recall@10', 'mrr@3', 'mrr@10'], ['paper recall@3', 'paper recall@10', 'paper mrr@3', 'paper mrr@10'])
    >>> paper_columns(["auc"], ["logloss", "auc", "acc"])[0]
    ['auc', 'acc', 'logloss']
    """
    found = set(paper_metrics)
    order = [m for m in metrics if m in found] + sorted(found - set(metrics))
    return order, [f"paper {m}" for m in order]


def paper_note(label: str | None) -> str:
    """The line under a table that names the paper behind its ``paper`` columns.

    >>> paper_note("TALLRec LLaMA-7B")
    'paper columns: TALLRec LLaMA-7B'
    """
    return f"paper columns: {label or 'the published numbers'}"


def numeric_metrics(metrics: dict[str, Any]) -> list[str]:
    """The keys of ``metrics`` holding a number that is a metric (not ``users``, the count behind ``ci95_by_user``).

    >>> numeric_metrics({"auc": 0.7, "ci95": {}, "users": 34, "ok": True, "template": "x"})
    ['auc']
    """
    return [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "users"]


def summarize_seeds(results: list[dict]) -> dict[str, Any]:
    """Mean, standard deviation and values of every numeric test metric over seeds.

    >>> summarize_seeds([{"metrics": {"auc": 0.6}}, {"metrics": {"auc": 0.7}}])["auc"]["mean"]
    0.65
    """
    keys = numeric_metrics(results[0]["metrics"])
    out = {}
    for k in keys:
        values = [float(r["metrics"][k]) for r in results if k in r["metrics"]]
        out[k] = {"mean": round(float(np.mean(values)), 6), "std": round(float(np.std(values, ddof=1)) if len(values) > 1
                                                                        else 0.0, 6), "values": values}
    return out


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


def _test_prompts(run: Path) -> Any:
    """The prompts a train run's test scoring (``test/metrics.json``) scored; the first seed's for a folder of
    seed runs; "-" when not there."""
    for folder in [run, *(q for _, q in seed_folders(run))]:
        try:
            found = json.loads((folder / "test" / "metrics.json").read_text())
            return found["run"]["prompts"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return "-"


def compare_table(paths: list[str | Path] | tuple[str | Path, ...]) -> str:
    """A plain-text table of the metrics of several run folders: value [95% bootstrap interval] for
    one run, mean ± std over seeds for a ``--seeds`` folder or an experiment row's folder of ``seed-N`` runs.

    Every folder is checked first; a folder without results gives one error naming it (``llmrec compare``).
    Example (two run folders of :func:`llmrec.evaluate` / :func:`llmrec.train`)::

        import llmrec

        print(llmrec.compare(["runs/zero-shot", "runs/lora-64"]))
    """
    results = [(p, row_metrics(p)) for p in paths]
    keys: list[str] = []
    for _, res in results:
        keys += [k for k in numeric_metrics(res["metrics"]) if k not in keys]
    header = ["run", "data", "prompts", *keys]
    rows = [header]
    for p, res in results:
        m, sd = res["metrics"], res.get("metrics_std", {})
        ci = m.get("ci95") if isinstance(m.get("ci95"), dict) else {}
        tested = res.get("test") if isinstance(res.get("test"), dict) else {}  # a train run: the split it was tested on
        where = "/".join(str(tested.get(k) or res.get(k, "?")) for k in ("dataset", "protocol", "split"))
        prompts = res["run"].get("prompts", "-") if isinstance(res.get("run"), dict) else "-"
        if tested:  # a train run counts its training prompts; show the test prompts its test/ scoring wrote
            prompts = _test_prompts(Path(p))
        count = len(res["seeds"]) if isinstance(res.get("seeds"), list) else 0
        seeds = f" ({count} seed{'s' if count != 1 else ''})" if count else ""
        cells = []
        for k in keys:
            v = m.get(k)
            if isinstance(v, float):
                interval = f" [{ci[k][0]:.4f}, {ci[k][1]:.4f}]" if k in ci and len(ci[k]) == 2 else ""
                cells.append(f"{v:.4f}" + (f" ± {sd[k]:.4f}" if k in sd else "") + interval)
            else:
                cells.append("-" if v is None else str(v))
        rows.append([Path(p).name + seeds, where, str(prompts), *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    by_user = [(p, res["metrics"]) for p, res in results if isinstance(res["metrics"].get("ci95_by_user"), dict)]
    if by_user:  # single runs whose samples share users: the intervals resampling whole users
        lines += ["", "95% intervals resampling whole users (samples of one user are not independent):"]
        for p, m in by_user:
            cells = [f"{k} [{lo:.4f}, {hi:.4f}]" for k, (lo, hi) in m["ci95_by_user"].items() if k in keys]
            lines.append(f"  {Path(p).name}: {', '.join(cells)} ({m.get('users', '?')} users)")
    return "\n".join(lines)
