"""The experiment file: named steps (prepare, retrieve, summarize, train, evaluate, baseline) and the table.

A step gives its config as a file path or an inline mapping, ``set`` overrides, and ``seeds``
(train and baseline steps). A string ``"@name"`` anywhere in a step's config (or in a
``set`` value) is the output folder of the earlier step ``name``: a prepared folder for
prepare / retrieve / summarize, a run folder for the others (a run folder also names its
adapter). The older suite form, ``rows`` of train / evaluate / baseline config files with
``adapters_from``, is the same thing: ``rows`` is an alias of ``steps``.

>>> exp = ExperimentConfig.model_validate({"name": "t", "steps": [
...     {"name": "data", "prepare": {"dataset": "ml-100k", "protocol": "tallrec"}},
...     {"name": "zs", "evaluate": {"data": "@data", "limit": 200}}]})
>>> [(s.name, s.kind, s.in_table) for s in exp.steps], exp.steps[1].references()
([('data', 'prepare', False), ('zs', 'evaluate', True)], {'data'})

The names of the suite era stay importable as deprecated aliases: ``SuiteConfig`` (:class:`ExperimentConfig`),
``SuiteRow`` (:class:`Step`), ``load_suite`` (:func:`load_experiment`), ``ExperimentConfig.rows`` (``.steps``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmrec.configfile import load_config, parse_override, read_yaml
from llmrec.errors import ConfigError
from llmrec.experiments.steps import STEP_KINDS
from llmrec.tracking import TrackingSettings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REF = re.compile(r"^@([A-Za-z0-9][A-Za-z0-9._-]*)$")


def references_in(value: Any) -> set[str]:
    """Names of the steps ``"@name"`` strings in a (nested) config value refer to.

    >>> sorted(references_in({"data": "@d", "mix_data": ["@e", "x"], "n": 3}))
    ['d', 'e']
    """
    if isinstance(value, str):
        m = _REF.match(value)
        return {m.group(1)} if m else set()
    if isinstance(value, dict):
        return set().union(*(references_in(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(references_in(v) for v in value)) if value else set()
    return set()


def map_strings(value: Any, fn) -> Any:
    """``value`` (nested dicts and lists) with every string ``s`` replaced by ``fn(s)``."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    return value


def substitute(value: Any, table: dict[str, str]) -> Any:
    """``value`` with every ``"@name"`` replaced by ``table[name]``.

    >>> substitute({"data": "@d", "k": ["@d", "x"]}, {"d": "runs/e/d"})
    {'data': 'runs/e/d', 'k': ['runs/e/d', 'x']}
    """
    def one(s: str) -> str:
        m = _REF.match(s)
        return table[m.group(1)] if m else s
    return map_strings(value, one)


class Step(BaseModel):
    """One step of an experiment (a row of its table unless ``in_table`` is false).

    Its kind is the one key that names a registered step kind (``train: movie-64.yaml``);
    :attr:`kind` and :attr:`source` hold it and its config (a file path or a mapping).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str = Field(description="the step kind, given as the key of its config: prepare, retrieve, summarize, "
                      "train, evaluate, baseline, or any registered kind")
    source: str | dict[str, Any] = Field(description="the step's config: a file or a mapping")
    seeds: list[int] | None = Field(None, description="train / baseline: one run per seed (default [0])")
    adapters_from: str | None = Field(None, description="evaluate with the adapters of this train step (per seed)")
    set: list[str] = Field(default_factory=list, description="overrides for this step's config")
    in_table: bool | None = Field(None, description="a row of the table (default: train, evaluate, baseline steps)")

    @model_validator(mode="before")
    @classmethod
    def _kind_key(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "kind" in data or "source" in data:
            return data
        given = [k for k in data if k in STEP_KINDS and data[k] is not None]
        if len(given) != 1:
            raise ValueError(f"row {data.get('name')!r}: give exactly one of "
                             f"{', '.join(repr(k) for k in STEP_KINDS)}")
        data = {k: v for k, v in data.items() if not (k in STEP_KINDS and v is None)}
        data["kind"], data["source"] = given[0], data.pop(given[0])
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if not _NAME.match(self.name):
            raise ValueError(f"step name {self.name!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
        record = STEP_KINDS[self.kind]
        if self.adapters_from and self.kind != "evaluate":
            raise ValueError(f"row {self.name!r}: adapters_from is for evaluate rows")
        if self.seeds is not None and not record.seeded:
            seeded = " and ".join(STEP_KINDS.names(lambda k: k.seeded))
            raise ValueError(f"row {self.name!r}: seeds are for {seeded} steps")
        bad = [s for s in self.set if "=" not in s]
        if bad:
            raise ValueError(f"row {self.name!r}: set entry {bad[0]!r} must look like key.subkey=value")
        if self.in_table is None:
            self.in_table = record.in_table
        return self

    def own_seeds(self) -> list[int] | None:
        """The seeds of a seeded step (None for the others)."""
        return (self.seeds or [0]) if STEP_KINDS[self.kind].seeded else None

    def references(self, base: dict[str, Any] | None = None) -> set[str]:
        """The steps this one reads (from its inline config or ``base``, its ``set`` values, ``adapters_from``)."""
        refs = references_in(self.source if isinstance(self.source, dict) else (base or {}))
        for text in self.set:
            refs |= references_in(parse_override(text)[1])
        if self.adapters_from:
            refs.add(self.adapters_from)
        return refs

    def config_data(self, experiment_file: Path | None) -> dict[str, Any]:
        """The step's config as a mapping (its file read, relative to the working folder or the experiment file)."""
        if isinstance(self.source, dict):
            return dict(self.source)
        return read_yaml(config_path(self.source, experiment_file))


def config_path(file: str, experiment_file: Path | None) -> Path:
    p = Path(file)
    if p.exists():
        return p
    if experiment_file is not None and (Path(experiment_file).parent / file).exists():
        return Path(experiment_file).parent / file
    raise ConfigError(f"{experiment_file or 'experiment'}: config file {file!r} not found")


class PaperNumbers(BaseModel):
    """The paper's numbers for rows of the table: one ``metric`` per row, or several.

    >>> p = PaperNumbers(metric="auc", scale=100, values={"a": 71.98, "b": {"auc": 70.0, "logloss": 60.0}})
    >>> p.for_row("a"), p.for_row("b"), p.for_row("c")
    ({'auc': 0.7198}, {'auc': 0.7, 'logloss': 0.6}, {})
    """

    model_config = ConfigDict(extra="forbid")

    label: str = "paper"
    metric: str = "auc"
    scale: float = Field(1.0, description="paper values are metric x scale (e.g. 100 for AUC x100)")
    values: dict[str, float | dict[str, float]] = Field(
        default_factory=dict, description="row -> the value of `metric`, or row -> {metric: value}")

    def for_row(self, row: str) -> dict[str, float]:
        """The paper's values of ``row`` by metric (scaled back to the metric's own range)."""
        value = self.values.get(row)
        if value is None:
            return {}
        values = value if isinstance(value, dict) else {self.metric: value}
        return {m: round(v / self.scale, 6) for m, v in values.items()}

    def metrics(self) -> list[str]:
        """Every metric some row has a paper value for (``metric`` first)."""
        found = {m for r in self.values for m in self.for_row(r)}
        return [self.metric] * (self.metric in found) + sorted(found - {self.metric})


class Curve(BaseModel):
    """A plot of a metric against a setting of the rows (AUC vs K, AUC vs N): ``OUT/<name>.png``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="file name of the plot (without .png)")
    metric: str = "auc"
    xlabel: str = "x"
    log_x: bool = False
    series: dict[str, dict[str, float]] = Field(description="line label -> {row name: x value}")
    references: dict[str, str] = Field(default_factory=dict,
                                       description="label -> row name: a dashed horizontal line at that row's mean "
                                                   "(a floor or a paper-scale row that has no x value)")


class Pairing(BaseModel):
    """Two rows scored on the same samples, compared sample by sample: ``a`` minus ``b`` with a 95% bootstrap
    interval (AUC / LogLoss / ACC, or Recall / MRR / NDCG of ranking rows), seed by seed (a row of one run, with
    no ``seeds``, pairs with each seed of the other)."""

    model_config = ConfigDict(extra="forbid")

    a: str = Field(description="row name: the minuend")
    b: str = Field(description="row name: the subtrahend (the reference)")
    by: Literal["sample", "user"] = Field("sample", description="what the bootstrap resamples: single samples "
                                          "(lists), or whole users (their samples are not independent: wider)")


class ExperimentConfig(BaseModel):
    """An experiment: its steps and the table of its results (a file may say ``rows:`` for ``steps:``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    metrics: list[str] = Field(default_factory=lambda: ["auc", "logloss", "acc"])
    paper: PaperNumbers | None = None
    steps: list[Step]
    curves: list[Curve] = Field(default_factory=list, description="plots of a metric against a row setting")
    paired: list[Pairing] = Field(default_factory=list,
                                  description="row pairs tested on the same samples: a - b with a paired interval")
    tracking: TrackingSettings = Field(default_factory=TrackingSettings,
                                       description="log every train / evaluate / baseline run (a step's own tracking "
                                       "section overrides it field by field) and the table / report to MLflow, "
                                       "under the experiment's name (docs/tracking.md)")

    @model_validator(mode="before")
    @classmethod
    def _rows_or_steps(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rows" in data:
            if "steps" in data:
                raise ValueError("give 'steps' or 'rows' (the same list), not both")
            data = {**data, "steps": data["rows"]}
            del data["rows"]
        return data

    @model_validator(mode="after")
    def _references(self) -> ExperimentConfig:
        if not _NAME.match(self.name):
            raise ValueError(f"experiment name {self.name!r}: use letters, digits, '.', '_' and '-' (it names the "
                             "default output folder runs/NAME)")
        names = [r.name for r in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("row names must be unique")
        earlier: dict[str, Step] = {}
        for r in self.steps:
            if r.adapters_from and (r.adapters_from not in earlier or earlier[r.adapters_from].kind != "train"):
                raise ValueError(f"row {r.name!r}: adapters_from {r.adapters_from!r} is not an earlier train row")
            unknown = sorted(r.references() - set(earlier))
            if unknown:
                raise ValueError(f"row {r.name!r}: '@{unknown[0]}' is not an earlier step")
            earlier[r.name] = r
        for curve in self.curves:
            used = {row for points in curve.series.values() for row in points} | set(curve.references.values())
            unknown = sorted(used - set(names))
            if unknown:
                raise ValueError(f"curve {curve.name!r}: no row named {', '.join(unknown)}")
        seen = set()
        for pair in self.paired:
            for side in (pair.a, pair.b):
                if side not in earlier:
                    raise ValueError(f"paired {pair.a!r} - {pair.b!r}: no row named {side!r}")
                if not earlier[side].in_table:
                    raise ValueError(f"paired {pair.a!r} - {pair.b!r}: {side!r} is a {earlier[side].kind} step, "
                                     "not a row of the table")
            if pair.a == pair.b:
                raise ValueError(f"paired {pair.a!r} - {pair.b!r}: a row paired with itself")
            if (pair.a, pair.b, pair.by) in seen:
                raise ValueError(f"paired {pair.a!r} - {pair.b!r}: listed twice")
            seen.add((pair.a, pair.b, pair.by))
        return self

    def step(self, name: str) -> Step:
        """The step named ``name``."""
        return next(r for r in self.steps if r.name == name)

    @property
    def rows(self) -> list[Step]:
        """Deprecated: the name of :attr:`steps` in the suite era."""
        return self.steps


def load_experiment(path: str | Path, overrides: tuple[str, ...] = ()) -> ExperimentConfig:
    """An experiment file (or an older suite file), validated; ``overrides`` are dotted ``key=value`` settings.

    >>> load_experiment("no/such.yaml")
    Traceback (most recent call last):
    ...
    llmrec.errors.ConfigError: no/such.yaml: config file not found
    """
    return load_config(ExperimentConfig, path, overrides)


# deprecated names of the suite era, kept so that older code still imports
SuiteConfig = ExperimentConfig
SuiteRow = Step
load_suite = load_experiment
