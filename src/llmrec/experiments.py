"""Experiment suites: one YAML file -> every row of a results table, run and tabulated.

A suite lists rows; each row is a ``train`` run (a config file, with seeds), an
``evaluate`` run (a config file, optionally with the adapters of an earlier train row, for
cross-domain tests) or a ``baseline`` run (a classic model's config file, with seeds). ``llmrec suite FILE`` runs the rows in order into ``OUT/<row>/``
(``seed-N`` subfolders for train rows), skips runs that are already finished (so an
interrupted suite continues where it stopped), and writes ``OUT/table.md`` and
``OUT/table.json``: the mean and standard deviation over seeds of each metric, next to the
paper's numbers when the suite gives them.

Example (``configs/tallrec/table.yaml``)::

    name: tallrec-table
    metrics: [auc]
    paper: {label: "TALLRec, LLaMA-7B", scale: 100, values: {movie-256: 71.98}}
    rows:
      - {name: movie-zeroshot, evaluate: configs/tallrec/movie-zeroshot.yaml}
      - {name: movie-256, train: configs/tallrec/movie-256.yaml, seeds: [0, 1, 2]}
      - {name: movie-256-on-book, evaluate: configs/tallrec/book-zeroshot.yaml, adapters_from: movie-256}
      - {name: movie-din-256, baseline: configs/baselines/din.yaml, seeds: [0, 1, 2],
         set: [data=prepared/ml-100k-tallrec, train_samples=256]}

>>> suite = SuiteConfig.model_validate({"name": "t", "rows": [{"name": "a", "train": "a.yaml"}]})
>>> suite.rows[0].seeds, suite.metrics
([0], ['auc', 'logloss', 'acc'])
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmrec.config import load_config
from llmrec.errors import ConfigError, LlmrecError
from llmrec.io import write_json, write_text


class SuiteRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    train: str | None = Field(None, description="train config file")
    evaluate: str | None = Field(None, description="evaluate config file")
    baseline: str | None = Field(None, description="baseline config file (llmrec baseline)")
    seeds: list[int] = Field(default_factory=lambda: [0])
    adapters_from: str | None = Field(None, description="evaluate with the adapters of this train row (one per seed)")
    set: list[str] = Field(default_factory=list, description="overrides for this row's config")

    @model_validator(mode="after")
    def _one_kind(self) -> SuiteRow:
        if sum(k is not None for k in (self.train, self.evaluate, self.baseline)) != 1:
            raise ValueError(f"row {self.name!r}: give exactly one of 'train', 'evaluate' or 'baseline'")
        if self.adapters_from and self.train:
            raise ValueError(f"row {self.name!r}: adapters_from is for evaluate rows")
        return self


class PaperNumbers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = "paper"
    metric: str = "auc"
    scale: float = Field(1.0, description="paper values are metric x scale (e.g. 100 for AUC x100)")
    values: dict[str, float] = Field(default_factory=dict)


class Curve(BaseModel):
    """A plot of a metric against a setting of the rows (AUC vs K, AUC vs N): ``OUT/<name>.png``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="file name of the plot (without .png)")
    metric: str = "auc"
    xlabel: str = "x"
    log_x: bool = False
    series: dict[str, dict[str, float]] = Field(description="line label -> {row name: x value}")


class SuiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    metrics: list[str] = Field(default_factory=lambda: ["auc", "logloss", "acc"])
    paper: PaperNumbers | None = None
    rows: list[SuiteRow]
    curves: list[Curve] = Field(default_factory=list, description="plots of a metric against a row setting")

    @model_validator(mode="after")
    def _references(self) -> SuiteConfig:
        names = [r.name for r in self.rows]
        if len(set(names)) != len(names):
            raise ValueError("row names must be unique")
        trained = set()
        for r in self.rows:
            if r.adapters_from and r.adapters_from not in trained:
                raise ValueError(f"row {r.name!r}: adapters_from {r.adapters_from!r} is not an earlier train row")
            if r.train:
                trained.add(r.name)
        for curve in self.curves:
            unknown = sorted({row for points in curve.series.values() for row in points} - set(names))
            if unknown:
                raise ValueError(f"curve {curve.name!r}: no row named {', '.join(unknown)}")
        return self


def load_suite(path: str | Path, overrides: tuple[str, ...] = ()) -> SuiteConfig:
    return load_config(SuiteConfig, path, overrides)


def _config_path(file: str, suite_file: Path) -> Path:
    p = Path(file)
    if p.exists():
        return p
    beside = suite_file.parent / file
    if beside.exists():
        return beside
    raise ConfigError(f"{suite_file}: config file {file!r} not found")


def plan_suite(suite_file: str | Path, out: str | Path, *, only: tuple[str, ...] = (),
               extra: tuple[str, ...] = ()) -> list[tuple[str, str, Any]]:
    """Every run of the suite as (label, kind, config), each checked before anything runs.

    A bad row (a missing config file, an invalid field, a missing data folder or split, a
    model that is not there) fails here, before the first row trains.
    """
    from llmrec.baselines.config import BaselineConfig
    from llmrec.baselines.run import check_baseline
    from llmrec.evaluate import EvaluateConfig, check_evaluate
    from llmrec.train.config import TrainConfig
    from llmrec.train.run import check_train

    suite_file = Path(suite_file)
    suite = load_suite(suite_file)
    out = Path(out)
    unknown = set(only) - {r.name for r in suite.rows}
    if unknown:
        raise ConfigError(f"no row named {', '.join(sorted(unknown))} in {suite_file}")
    plan: list[tuple[str, str, Any]] = []
    for row in suite.rows:
        if only and row.name not in only:
            continue
        seeds = row.seeds if not row.adapters_from else _row(suite, row.adapters_from).seeds
        for seed in seeds:
            folder = out / row.name / f"seed-{seed}"
            where = f"{suite_file}: row {row.name!r}"
            try:
                if row.train:
                    cfg = load_config(TrainConfig, _config_path(row.train, suite_file), [*row.set, *extra])
                    cfg = cfg.model_copy(update={"seed": seed, "run_dir": str(folder)})
                    check_train(cfg)
                    plan.append((f"{row.name} seed {seed}: train -> {folder}", "train", cfg))
                elif row.baseline:
                    cfg = load_config(BaselineConfig, _config_path(row.baseline, suite_file), [*row.set, *extra])
                    cfg = cfg.model_copy(update={"seed": seed, "run_dir": str(folder)})
                    check_baseline(cfg)
                    plan.append((f"{row.name} seed {seed}: baseline {cfg.model} -> {folder}", "baseline", cfg))
                else:
                    cfg = load_config(EvaluateConfig, _config_path(row.evaluate, suite_file), [*row.set, *extra])
                    update: dict[str, Any] = {"run_dir": str(folder if row.adapters_from else out / row.name)}
                    if row.adapters_from:
                        update["adapter"] = str(out / row.adapters_from / f"seed-{seed}")
                    cfg = cfg.model_copy(update=update)
                    check_evaluate(cfg, adapter=not row.adapters_from)  # that adapter is trained by an earlier row
                    label = f"{row.name}{f' seed {seed}' if row.adapters_from else ''}: evaluate -> {cfg.run_dir}"
                    plan.append((label, "evaluate", cfg))
            except LlmrecError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            if row.evaluate and not row.adapters_from:
                break
    return plan


def run_suite(suite_file: str | Path, out: str | Path, *, only: tuple[str, ...] = (), extra: tuple[str, ...] = (),
              log: Callable[[str], None] = print, progress: bool = True) -> dict[str, Any]:
    """Check every row (or those in ``only``), then run them into ``out`` and write the table."""
    plan = plan_suite(suite_file, out, only=only, extra=extra)
    from llmrec.baselines.run import run_baseline
    from llmrec.evaluate import evaluate
    from llmrec.train.run import train

    runner = {"train": train, "evaluate": evaluate, "baseline": run_baseline}
    for label, kind, cfg in plan:
        log(f"== {label}")
        runner[kind](cfg, log=log, progress=progress)
    return write_table(load_suite(suite_file), out)


def _row(suite: SuiteConfig, name: str) -> SuiteRow:
    return next(r for r in suite.rows if r.name == name)


def _row_metrics(out: Path, row: SuiteRow, suite: SuiteConfig) -> list[dict[str, Any]]:
    """The metrics of each finished run of a row (one per seed, or one for a plain evaluate row)."""
    from llmrec.runs import load_metrics

    if row.evaluate and not row.adapters_from:
        files = [out / row.name / "metrics.json"]
    else:
        seeds = row.seeds if not row.adapters_from else _row(suite, row.adapters_from).seeds
        files = [out / row.name / f"seed-{s}" / "metrics.json" for s in seeds]
    return [load_metrics(f.parent)["metrics"] for f in files if f.exists()]


def _write_curves(suite: SuiteConfig, rows: dict[str, Any], out: Path) -> list[str]:
    """The suite's curves as PNG files, from the finished rows (a curve without two points is skipped)."""
    from llmrec.plots import curve_plot

    written = []
    for curve in suite.curves:
        series = {label: [(x, rows[r][curve.metric]["mean"], rows[r][curve.metric]["std"]) for r, x in points.items()
                          if curve.metric in rows.get(r, {})] for label, points in curve.series.items()}
        series = {k: v for k, v in series.items() if v}
        if sum(len(v) for v in series.values()) >= 2:
            written.append(curve_plot(series, out / f"{curve.name}.png", curve.xlabel, curve.metric.upper(),
                                      f"{suite.name}: {curve.metric} vs {curve.xlabel}", log_x=curve.log_x))
    return written


def write_table(suite: SuiteConfig, out: str | Path) -> dict[str, Any]:
    """``table.md`` and ``table.json`` from whatever runs of the suite are finished."""
    out = Path(out)
    table: dict[str, Any] = {"suite": suite.name, "rows": {}}
    head = ["row", "runs", *[f"{m} (mean ± std)" for m in suite.metrics]]
    if suite.paper:
        head.append(f"{suite.paper.label} {suite.paper.metric}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in suite.rows:
        found = _row_metrics(out, row, suite)
        entry: dict[str, Any] = {"runs": len(found)}
        cells = [row.name, str(len(found))]
        for m in suite.metrics:
            values = [float(f[m]) for f in found if m in f]
            if values:
                mean = float(np.mean(values))
                std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                entry[m] = {"mean": mean, "std": std, "values": values}
                cells.append(f"{mean:.4f} ± {std:.4f}" if len(values) > 1 else f"{mean:.4f}")
            else:
                cells.append("-")
        if suite.paper:
            value = suite.paper.values.get(row.name)
            entry["paper"] = value / suite.paper.scale if value is not None else None
            cells.append(f"{value / suite.paper.scale:.4f}" if value is not None else "-")
        table["rows"][row.name] = entry
        lines.append("| " + " | ".join(cells) + " |")
    text = f"# {suite.name}\n\n{suite.description}\n\n" + "\n".join(lines) + "\n"
    table["curves"] = _write_curves(suite, table["rows"], out)
    if table["curves"]:
        text += "\n" + "\n".join(f"![{c}]({c})" for c in table["curves"]) + "\n"
    write_text(out / "table.md", text)
    write_json(out / "table.json", table)
    table["markdown"] = text
    return table
