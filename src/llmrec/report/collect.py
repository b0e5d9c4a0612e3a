"""What a report shows, read from folders on disk: experiment tables (``table.json``) and single runs.

Only the readers of those files are imported (``llmrec.runs``, ``llmrec.paired``; ``llmrec.tables`` for the
order of the paper's columns), never the code that writes them: the report reads the files that experiments,
training, evaluation and baselines write (``table.json``, ``metrics.json`` / ``summary.json``, ``config.yaml``,
``predictions.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmrec.errors import ConfigError, DataError, LlmrecError
from llmrec.io import read_json
from llmrec.paired import predictions_file, run_predictions, well_formed
from llmrec.runs import load_metrics, numeric_metrics
from llmrec.tables import paper_columns

RANKING_KS = (1, 3, 5, 10)


@dataclass
class Row:
    """One row of a report table: a method or baseline, over its seeds."""

    name: str
    runs: list[Path]
    metrics: list[dict[str, Any]]  # each run's metrics.json "metrics"
    paper: dict[str, float] = field(default_factory=dict)
    costs: list[dict[str, Any]] = field(default_factory=list)  # each run's metrics.json "cost" ({} when none)

    def values(self, metric: str) -> list[float]:
        return [float(m[metric]) for m in self.metrics if isinstance(m.get(metric), (int, float))]

    @property
    def ranking(self) -> bool:
        return any("recall@3" in m for m in self.metrics)

    def predictions(self) -> pd.DataFrame | None:
        """The first run's predictions (label, score), for calibration and histograms."""
        run = next((r for r in self.runs if predictions_file(r) is not None), None)
        return run_predictions(run) if run is not None else None


@dataclass
class Section:
    """One experiment (or the loose runs given on the command line)."""

    title: str
    description: str
    metrics: list[str]
    rows: list[Row]
    paper_label: str | None = None
    folder: Path | None = None
    curves: list[Path] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)  # table.json's paired differences

    @property
    def paper_metrics(self) -> list[str]:
        return paper_columns(self.metrics, {m for r in self.rows for m in r.paper})[0]


def _row(name: str, runs: list[Path], paper: dict[str, float] | None = None) -> Row:
    """A row from its run folders: each run's metrics and cost."""
    records = [load_metrics(r) for r in runs]
    return Row(name, runs, [r["metrics"] for r in records], paper or {},
               [r.get("cost") if isinstance(r.get("cost"), dict) else {} for r in records])


def _moved(run: Path, folder: Path, row: str) -> Path:
    """A recorded run folder, or the same run inside ``folder`` when the experiment folder was moved or copied
    (``table.json`` records the paths it was written with, e.g. ``runs/x/din/seed-0`` -> ``FOLDER/din/seed-0``).

    >>> str(_moved(Path("/nowhere/runs/x/din/seed-0"), Path("results/x"), "din"))
    'results/x/din/seed-0'
    """
    if (run / "metrics.json").exists() or row not in run.parts:
        return run
    at = len(run.parts) - 1 - run.parts[::-1].index(row)
    return folder.joinpath(*run.parts[at:])


def experiment_section(folder: Path) -> Section:
    """A section from an experiment's output folder (its ``table.json``); a table.json of another shape is one
    error naming it."""
    table = read_json(folder / "table.json")
    try:
        return _section(folder, table)
    except LlmrecError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        what = f"no {exc}" if isinstance(exc, KeyError) else type(exc).__name__
        raise DataError(f"not an llmrec experiment table ({what}); rebuild it with `llmrec run FILE --table-only`",
                        path=folder / "table.json") from None


def _section(folder: Path, table: dict[str, Any]) -> Section:
    rows = []
    for name, entry in table["rows"].items():
        runs = [_moved(Path(f), folder, name) for f in entry.get("folders", [])]
        if not runs:  # tables from before the folders were recorded
            base = folder / name
            runs = [base] if (base / "metrics.json").exists() else sorted(base.glob("seed-*"))
            runs = [r for r in runs if (r / "metrics.json").exists()]
        paper = entry.get("paper") or {}
        if not isinstance(paper, dict):
            paper = {}
        rows.append(_row(name, runs, paper))
    metrics = table.get("metrics") or sorted({k for r in rows for m in r.metrics for k in numeric_metrics(m)})
    # table.json names the experiment under "suite" (the on-disk format of the suite era, kept)
    return Section(table.get("suite", folder.name), table.get("description", ""), metrics, rows,
                   table.get("paper_label"), folder, [folder / c for c in table.get("curves", [])],
                   [e for e in table.get("paired") or [] if well_formed(e)])


def runs_section(folders: list[Path]) -> Section:
    """A section of loose run folders (``llmrec evaluate`` / ``train`` / ``baseline`` / ``--seeds`` folders)."""
    rows = []
    for f in folders:
        if (f / "summary.json").exists() and not (f / "metrics.json").exists():  # a --seeds folder
            runs = [Path(r) for r in read_json(f / "summary.json").get("runs", [])]
        else:
            runs = [f]
        rows.append(_row(f.name, runs))
    ranking = any(r.ranking for r in rows)
    metrics = ["recall@3", "recall@10", "mrr@3", "mrr@10", "ndcg@10"] if ranking else ["auc", "logloss", "acc"]
    return Section("runs", "", metrics, rows)


def _is_run(folder: Path) -> bool:
    return (folder / "metrics.json").exists() or (folder / "summary.json").exists()


def _inner_results(folder: Path) -> list[Path]:
    """The experiment and run folders directly inside ``folder``, in name order."""
    try:
        inner = sorted(q for q in folder.iterdir() if q.is_dir())
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    return [q for q in inner if (q / "table.json").exists() or _is_run(q)]


def collect(paths: list[str | Path]) -> list[Section]:
    """Sections for the given folders: each experiment folder is one, the loose runs together are one; a folder
    of experiment folders (such as ``results/``) stands for the experiments in it, in name order."""
    sections, loose = [], []
    for p in map(Path, paths):
        if (p / "table.json").exists():
            sections.append(experiment_section(p))
        elif _is_run(p):
            loose.append(p)
        elif inner := _inner_results(p):
            sections.extend(experiment_section(q) for q in inner if (q / "table.json").exists())
            loose.extend(q for q in inner if not (q / "table.json").exists())
        else:
            raise ConfigError(f"{p}: not an experiment folder (no table.json) nor a run folder (no metrics.json); "
                              "give the folder of llmrec run / evaluate / train / baseline")
    if loose:
        sections.append(runs_section(loose))
    return sections


def ranking_by_k(row: Row, metric: str = "recall") -> dict[int, float]:
    """Mean ``metric@k`` over the row's runs for each k it has."""
    out = {}
    for k in RANKING_KS:
        values = row.values(f"{metric}@{k}")
        if values:
            out[k] = float(np.mean(values))
    return out
