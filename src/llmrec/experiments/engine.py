"""The one orchestrator: plan an experiment's steps, run what is not done, skip what is.

Every run of every step (one per seed for train and baseline steps, and for evaluate steps that
use a seeded step's adapters) gets a **key**: the hash of its kind, its resolved config (other
steps' outputs stand in as their own keys, so the key does not depend on where the experiment
folder lies), the content hashes of the prepared folders and source files it reads, and the
model's fingerprint. ``OUT/.steps/<step>[@seed-N].json`` records the key of each finished run:

* same key and a finished output: the run is skipped;
* another key (its config or an input changed): its output is removed and it runs again, and
  so does everything downstream (their keys contain this key), nothing else;
* no record (an interrupted run, or a folder from before): it runs, and its own resume logic
  (checkpoints, partial predictions, the summary journal, the encoding cache) continues where
  it stopped;
* same key, but its output lacks what a run still to do reads (a train run copied from
  ``results/`` keeps its metrics, not its adapter): it runs again first (``restore``), and the
  runs already done downstream of it stay done.

Every config is validated, and every step whose inputs already exist is checked, before the
first step runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from llmrec.configfile import apply_overrides, deep_merge, load_config
from llmrec.errors import ConfigError, LlmrecError, OutputError
from llmrec.experiments.config import ExperimentConfig, Step, load_experiment, map_strings, substitute
from llmrec.experiments.steps import STEP_KINDS, StepKind
from llmrec.io import file_sha256, write_json
from llmrec.tracking import TrackingSettings


@dataclass
class PlannedRun:
    """One run of one step: its resolved config, output folder and key."""

    step: Step
    seed: int | None
    folder: Path
    config: Any
    key: str
    upstream: list[PlannedRun] = field(default_factory=list)

    @property
    def kind(self) -> StepKind:
        return STEP_KINDS[self.step.kind]

    @property
    def label(self) -> str:
        return f"{self.step.name}{f' seed {self.seed}' if self.seed is not None else ''}: {self.step.kind}"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _is_file(path: Path) -> bool:
    """False for a config string that cannot be a path (a name longer than 255 bytes) instead of an OSError."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _input_fingerprints(config: dict[str, Any], kind: StepKind, produced: set[str]) -> dict[str, str]:
    """Content hashes of what a run reads that no step of the experiment produces."""
    from llmrec.data.prepared import folder_fingerprint
    from llmrec.llm.fingerprint import model_fingerprint
    from llmrec.llm.settings import ModelConfig

    out: dict[str, str] = {}

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, str) and value not in produced and _is_file(Path(value) / "meta.json"):
            try:
                out[value] = folder_fingerprint(value)
            except (OSError, ValueError, KeyError):
                out[value] = "unreadable"
        elif isinstance(value, str) and "template" in key and _is_file(Path(value)):
            # a template given as a file (a shipped one is named, and versioned with the code): its text
            out[value] = file_sha256(value)[:20]
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, key)

    walk(config)
    for section in (config.get("model"), (config.get("encoder") or {}).get("model")):
        if isinstance(section, dict) and section.get("name"):
            out["model"] = model_fingerprint(ModelConfig.model_validate(section))
    if kind.inputs is not None:  # what the config names only indirectly (a prepare step's source files)
        out.update(kind.inputs(config))
    return out


def plan_experiment(experiment_file: str | Path | None, out: str | Path, *, experiment: ExperimentConfig | None = None,
                    only: tuple[str, ...] = (), extra: tuple[str, ...] = (),
                    seeds: tuple[int, ...] = ()) -> list[PlannedRun]:
    """Every run of the experiment, in order, with resolved configs and keys (nothing runs).

    ``only`` keeps these steps and every step they read; ``seeds`` keeps only these seeds of
    the seeded steps (and every run they read), so a long table can grow seed by seed: a run's
    key does not depend on which other seeds its row lists. ``extra`` overrides apply to the
    train, evaluate and baseline steps.
    """
    experiment_file = Path(experiment_file) if experiment_file else None
    if experiment is None:
        experiment = load_experiment(experiment_file)
    out = Path(out)
    check_owner(out, experiment.name)
    unknown = set(only) - {r.name for r in experiment.steps}
    if unknown:
        raise ConfigError(f"no step named {', '.join(sorted(unknown))} in {experiment_file or experiment.name}")
    runs: dict[str, dict[int | None, PlannedRun]] = {}
    plan: list[PlannedRun] = []
    for row in experiment.steps:
        where = f"{experiment_file or experiment.name}: step {row.name!r}"
        parts = [row.source] if isinstance(row.source, str) else []
        parts += ["its set"] * bool(row.set) + ["--set"] * bool(extra)
        if parts:
            where += f" ({', '.join(parts)})"
        try:
            base = row.config_data(experiment_file)
            refs = sorted(row.references(base))
            for run in _plan_row(row, base, refs, runs, out, extra, experiment.tracking):
                runs.setdefault(row.name, {})[run.seed] = run
                plan.append(run)
        except LlmrecError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    _check_pairs(experiment, runs, experiment_file)
    if only or seeds:
        named = [r for r in plan if not only or r.step.name in only]
        todo = [r for r in named if not seeds or r.seed is None or r.seed in seeds]
        if seeds and not any(r.seed in seeds for r in todo):
            listed = sorted({r.seed for r in named if r.seed is not None})
            raise ConfigError(f"no run of {', '.join(only) or 'the experiment'} has seed "
                              f"{', '.join(map(str, seeds))} (seeds: {', '.join(map(str, listed)) or 'none'})")
        keep = set()
        while todo:
            run = todo.pop()
            if id(run) not in keep:
                keep.add(id(run))
                todo.extend(run.upstream)
        plan = [r for r in plan if id(r) in keep]
    return plan


def tested_on(config: Any) -> tuple[str, int | None, int] | None:
    """The test samples a train / evaluate / baseline run scores: (split, limit, sample_seed); None when it tests
    nothing (a train run with ``test.enabled: false``; a step that is not a row)."""
    test = getattr(config, "test", None)
    if test is not None and hasattr(test, "split"):  # train and baseline runs: their test section
        return None if getattr(test, "enabled", True) is False else (test.split, test.limit, getattr(test, "sample_seed", 0))
    if hasattr(config, "split") and hasattr(config, "limit"):  # an evaluate run
        return config.split, config.limit, getattr(config, "sample_seed", 0)
    return None


def _split_rows(config: Any, split: str) -> int | None:
    """The number of samples in the split a run tests, when its prepared folder is already there (else None)."""
    test = getattr(config, "test", None)
    data = getattr(test, "data", None) or getattr(config, "data", None)
    try:
        return pq.read_metadata(Path(str(data)) / f"{split}.parquet").num_rows
    except (OSError, ValueError, TypeError):  # not prepared yet (a prepare step makes it), or not a prepared folder
        return None


def _tested_samples(config: Any) -> tuple[str, int | None, int, int | None] | None:
    """:func:`tested_on` and the number of samples scored when the split is already prepared (else None); a limit
    at or above the split's size reads as every sample."""
    selection = tested_on(config)
    if selection is None:
        return None
    split, limit, seed = selection
    rows = _split_rows(config, split)
    if limit and rows is not None and limit >= rows:
        limit = None
    return split, limit, seed, (None if rows is None else limit or rows)


def _check_pairs(experiment: ExperimentConfig, runs: dict[str, dict[int | None, PlannedRun]],
                 where: Path | None) -> None:
    """Each ``paired:`` pair tests both rows on the same split and, where both draw a subset, the same subset
    (limit, sample_seed), and where both splits are already prepared, the same number of samples; checked before
    anything runs: a pair of other samples could only show "not computed" after hours of work."""
    def described(selection: tuple[str, int | None, int, int | None]) -> str:
        split, limit, seed, count = selection
        every = "every sample" + (f" ({count:,})" if count is not None else "")
        return f"split {split!r}, " + (f"{limit:,} samples drawn with sample_seed {seed}" if limit else every)

    for pair in experiment.paired:
        first = {name: next(iter(runs.get(name, {}).values()), None) for name in (pair.a, pair.b)}
        if any(run is None for run in first.values()):
            continue
        tests = {name: _tested_samples(run.config) for name, run in first.items()}
        if None in tests.values():
            missing = next(name for name, t in tests.items() if t is None)
            raise ConfigError(f"{where or experiment.name}: paired {pair.a!r} - {pair.b!r}: {missing!r} tests nothing")
        (split_a, limit_a, seed_a, count_a), (split_b, limit_b, seed_b, count_b) = tests[pair.a], tests[pair.b]
        # a row without a limit scores every sample of its data, which may be a subset already (a summarized
        # folder of the seeded lists): two splits, two drawn subsets, or two known counts can differ before running
        if (split_a != split_b or (limit_a and limit_b and (limit_a, seed_a) != (limit_b, seed_b))
                or (count_a is not None and count_b is not None and count_a != count_b)):
            raise ConfigError(f"{where or experiment.name}: paired {pair.a!r} - {pair.b!r}: {pair.a!r} tests on "
                              f"{described(tests[pair.a])}, {pair.b!r} on {described(tests[pair.b])}; pair rows "
                              "tested on the same samples")


def _seeds(row: Step, refs: list[str], runs: dict[str, dict[int | None, PlannedRun]]) -> list[int | None]:
    own = row.own_seeds()
    if own is not None:
        return list(own)
    seeded = {name: sorted(k for k in runs[name] if k is not None) for name in refs if None not in runs[name]}
    if row.adapters_from:
        return list(seeded[row.adapters_from])
    lists = {tuple(v) for v in seeded.values()}
    if len(lists) > 1:
        raise ConfigError(f"it reads steps with different seeds ({', '.join(seeded)}); give them the same seeds")
    return list(lists.pop()) if lists else [None]


def _plan_row(row: Step, base: dict[str, Any], refs: list[str], runs, out: Path,
              extra: tuple[str, ...], tracking: TrackingSettings | None = None) -> list[PlannedRun]:
    kind = STEP_KINDS[row.kind]
    cls = kind.config()
    shared = tracking.model_dump(exclude_defaults=True) if tracking is not None else {}
    if shared and "tracking" in cls.model_fields:  # the experiment's tracking, under the step's own settings
        own = base.get("tracking")
        base = {**base, "tracking": deep_merge(shared, own if isinstance(own, dict) else {})}
    planned = []
    for seed in _seeds(row, refs, runs):
        upstream = {}
        for name in refs:
            options = runs[name]
            if seed in options:
                upstream[name] = options[seed]
            elif len(options) == 1:
                upstream[name] = next(iter(options.values()))
            else:
                raise ConfigError(f"'@{name}' has runs for seeds {sorted(options)}; this step has none of them")
        data = apply_overrides(base, [*row.set, *(extra if kind.in_table else ())])
        if row.adapters_from:
            data["adapter"] = f"@{row.adapters_from}"
        if kind.seeded:
            data["seed"] = seed
        folder = out / row.name if seed is None else out / row.name / f"seed-{seed}"
        paths = {n: str(r.folder) for n, r in upstream.items()}
        resolved = substitute(data, paths)
        resolved[kind.output_field] = str(folder)
        config = load_config(cls, base=resolved)
        # in the key an upstream output is its key, not its path: moving OUT changes no key
        as_key = {str(r.folder): f"@{n}#{r.key}" for n, r in upstream.items()}
        keyed = map_strings(config.model_dump(mode="json", exclude=exclusions([kind.output_field, *kind.transient])),
                            lambda s, table=as_key: table.get(s, s))
        inputs = {k: v for k, v in resolved.items() if k != kind.output_field}  # its own output is no input
        key = _digest({"kind": row.kind, "config": keyed,
                       "inputs": _input_fingerprints(inputs, kind, set(paths.values()))})
        planned.append(PlannedRun(row, seed, folder, config, key, list(upstream.values())))
    return planned


def exclusions(names: list[str]) -> dict[str, Any]:
    """pydantic's ``exclude`` for field names, dotted ones naming a nested field.

    >>> exclusions(["out", "optim.shared_prefix", "optim.x"])
    {'out': True, 'optim': {'shared_prefix': True, 'x': True}}
    """
    out: dict[str, Any] = {}
    for name in names:
        node = out
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = True
    return out


def owner_path(out: str | Path) -> Path:
    """``OUT/.steps/@experiment.json``: the name of the experiment the folder belongs to (no step is named ``@...``)."""
    return Path(out) / ".steps" / "@experiment.json"


def folder_owner(out: str | Path) -> str | None:
    """The experiment ``out`` belongs to: its marker's name, else (a folder written before the marker) the name its
    ``table.json`` records, else None (a new folder, or one adopted by whichever experiment runs in it first).

    >>> import tempfile; folder_owner(tempfile.mkdtemp()) is None
    True
    """
    out = Path(out)
    for path, key in ((owner_path(out), "experiment"), (out / "table.json", "suite")):
        record = _read_record(path)
        if isinstance(record, dict) and isinstance(record.get(key), str):
            return record[key]
    return None


def check_owner(out: str | Path, name: str) -> None:
    """Refuse to run (or tabulate) the experiment ``name`` in a folder that belongs to another experiment: a step of
    the same name there is another experiment's finished run, and its other key would remove it.

    >>> import tempfile, pathlib; d = pathlib.Path(tempfile.mkdtemp())
    >>> claim_folder(d, "movie"); check_owner(d, "movie")
    >>> check_owner(d, "book")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    llmrec.errors.OutputError: ...: this folder holds the experiment 'movie', not 'book' ...
    """
    owner = folder_owner(out)
    if owner is not None and owner != name:
        raise OutputError(f"{out}: this folder holds the experiment {owner!r}, not {name!r} (running it here would "
                          f"replace the runs of {owner!r}); choose another --out")


def claim_folder(out: str | Path, name: str) -> None:
    """Write the marker naming ``out``'s experiment (a folder from before the marker is adopted by its first run)."""
    if not owner_path(out).is_file():
        write_json(owner_path(out), {"experiment": name})


def record_path(out: Path, run: PlannedRun) -> Path:
    return out / ".steps" / f"{run.step.name}{f'@seed-{run.seed}' if run.seed is not None else ''}.json"


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def state(out: str | Path, run: PlannedRun) -> str:
    """``done`` (same key, finished), ``changed`` (another key recorded) or ``todo``."""
    rec = _read_record(record_path(Path(out), run))
    if rec and rec.get("key") == run.key and run.kind.finished(run.folder):
        return "done"
    if rec and rec.get("key") != run.key:
        return "changed"
    return "todo"


def plan_states(out: str | Path, plan: list[PlannedRun]) -> dict[int, str]:
    """``id(run)`` -> :func:`state` of every run, and ``restore`` for a done run whose output lacks what a run
    still to do reads (a train run copied from ``results/`` keeps no adapter): it runs again first."""
    states = {id(r): state(out, r) for r in plan}
    for run in plan:
        if states[id(run)] != "done":
            for u in run.upstream:
                if states[id(u)] == "done" and u.kind.missing_artifacts(u.folder):
                    states[id(u)] = "restore"
    return states


def run_steps(experiment_file: str | Path | None, out: str | Path, *, experiment: ExperimentConfig | None = None,
              only: tuple[str, ...] = (), extra: tuple[str, ...] = (), seeds: tuple[int, ...] = (),
              log: Callable[[str], None] = print, progress: bool = True) -> list[PlannedRun]:
    """Plan, check, then run every step that is not done; returns the plan (no table: see
    :func:`llmrec.experiments.run_experiment`)."""
    out = Path(out)
    if experiment is None:
        experiment = load_experiment(experiment_file)
    plan = plan_experiment(experiment_file, out, experiment=experiment, only=only, extra=extra, seeds=seeds)
    states = plan_states(out, plan)
    problems = check_problems(plan, states)  # cheap checks of every run whose inputs are already there
    if problems:
        raise ConfigError(next(iter(problems.values())))
    claim_folder(out, experiment.name)
    for run in plan:
        with run_lock(out, run, log):
            _run_one(out, run, states, log, progress)
    return plan


def _run_one(out: Path, run: PlannedRun, states: dict[int, str], log: Callable[[str], None], progress: bool) -> None:
    """Run ``run`` unless it is done (skip) or restore / rerun it; under its lock, so another process that was
    running it meanwhile (``llmrec run --only`` on another GPU) has finished it: then it is done."""
    upstream_changed = any(states[id(u)] in ("changed", "rerun") for u in run.upstream)
    if states[id(run)] in ("todo", "changed") and not upstream_changed and state(out, run) == "done":
        states[id(run)] = "done"
    stale = states[id(run)] == "changed" or upstream_changed
    if states[id(run)] == "done" and not stale:
        log(f"== {run.label} -> {run.folder}: done (key {run.key})")
        if getattr(getattr(run.config, "tracking", None), "enabled", list)():
            # the finished folder is met again: its trackers log it unless they have it (nothing is recomputed)
            run.kind.run(run.config, log=log, progress=progress)
        return
    if stale and run.folder.exists():
        log(f"== {run.label}: its config or inputs changed; removing {run.folder} and running it again")
        shutil.rmtree(run.folder)
        states[id(run)] = "rerun"
    elif states[id(run)] == "restore":
        missing = ", ".join(run.kind.missing_artifacts(run.folder))
        log(f"== {run.label}: done, but {missing} (read by a step still to run) is not in {run.folder}, "
            "as in a record copied without weights: running it again")
        shutil.rmtree(run.folder)
    log(f"== {run.label} -> {run.folder}")
    checked = _check(run) if run.kind.check else None  # a plan (evaluate, train, baseline) the run starts from
    t0 = time.perf_counter()
    run.kind.run(run.config if checked is None else checked, log=log, progress=progress)
    del checked  # its folders' tables go with it
    write_json(record_path(out, run), {"step": run.step.name, "kind": run.step.kind, "seed": run.seed,
                                       "key": run.key, "folder": str(run.folder),
                                       "seconds": round(time.perf_counter() - t0, 1)})


@contextmanager
def run_lock(out: Path, run: PlannedRun, log: Callable[[str], None] = print) -> Iterator[None]:
    """Hold ``OUT/.steps/<step>[@seed-N].lock`` while a run runs, so that ``llmrec run FILE --only A`` and
    ``--only B`` started at once (one per GPU) run a step they both read once: the second waits, then finds it
    done. The operating system releases the lock of a killed process (POSIX ``flock``; elsewhere no lock is
    taken). Tables and reports are written atomically: the last process to finish writes the fullest."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        yield
        return
    path = record_path(out, run).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"== {run.label}: another process is running it; waiting")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_problems(plan: list[PlannedRun], states: dict[int, str]) -> dict[int, str]:
    """The cheap checks (data, split, template, model path...) of every run still to do whose inputs are already
    there, before anything runs: ``id(run)`` -> the one-line error of each run that would fail, in plan order."""
    problems = {}
    for run in plan:
        if run.kind.check and states[id(run)] not in ("done", "restore") and all(
                states[id(u)] == "done" or (states[id(u)] != "restore" and u.kind.finished(u.folder))
                for u in run.upstream):
            try:
                _check(run)
            except ConfigError as exc:
                problems[id(run)] = str(exc)
    return problems


def _check(run: PlannedRun) -> Any:
    """The run's cheap checks; returns what they settled (a plan its run function takes instead of the config)."""
    try:
        return run.kind.check(run.config)
    except LlmrecError as exc:
        raise ConfigError(f"step {run.step.name!r}: {exc}") from None
