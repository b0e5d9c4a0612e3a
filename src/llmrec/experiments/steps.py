"""What each kind of experiment step is: its typed config, where its output goes, how it runs.

One record per kind in the :data:`STEP_KINDS` registry (peft-style, explicit). Everything that
varies by kind is on its record: the experiment file's keys (a step names its kind by giving
``<kind>: <config>``), whether it runs per seed and is a row of the table, the inputs it
fingerprints beyond its config, where its output goes and when that output is complete. A new
kind is one :func:`register_step_kind` call::

>>> sorted(STEP_KINDS)
['baseline', 'evaluate', 'prepare', 'retrieve', 'stack', 'summarize', 'train']
>>> STEP_KINDS["train"].seeded, STEP_KINDS["prepare"].in_table
(True, False)
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llmrec.registry import Registry


@dataclass(frozen=True)
class StepKind:
    """One kind of step."""

    name: str
    config: Callable[[], type[BaseModel]]  # the config class (imported lazily)
    output_field: str  # the config field that names the output folder
    run: Callable[..., Any]  # (config, or the plan its check returned, log=, progress=) -> anything
    # cheap checks before anything runs (inputs must exist); what it returns (a plan), unless None, is what ``run``
    # gets instead of the config, so nothing is checked or opened twice
    check: Callable[[Any], Any] | None = None
    marker: str = "metrics.json"  # the file a finished output holds
    transient: tuple[str, ...] = ("resume",)  # fields that do not change the result (dotted: a nested field)
    # files later steps read that a copied record leaves out (a train run's weights): a finished run
    # without them runs again when a step still to run reads it
    artifacts: tuple[str, ...] = ()
    seeded: bool = False  # one run per seed (``seeds:``)
    in_table: bool = False  # a row of the experiment's table by default
    # content hashes of inputs the config names only indirectly (a data set's source files), for the step's key
    inputs: Callable[[dict[str, Any]], dict[str, str]] | None = None
    # (config mapping, :class:`~llmrec.experiments.rehearsal.Rehearsal`) -> the mapping a CPU rehearsal runs: tiny
    # models, toy sizes (``llmrec run --rehearse``); None: the step runs as written
    rehearse: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
    description: str = ""

    def finished(self, folder: Path) -> bool:
        return (Path(folder) / self.marker).is_file()

    def missing_artifacts(self, folder: Path) -> list[str]:
        """The ``artifacts`` a finished output in ``folder`` lacks (``[]``: later steps can read it)."""
        return [name for name in self.artifacts if not (Path(folder) / name).exists()]


def _attr(module: str, name: str) -> Callable[[], Any]:
    """A function returning ``module.name``, imported when first called (steps load only what they run)."""
    return lambda: getattr(importlib.import_module(module), name)


def _runner(module: str, name: str, takes_progress: bool = True) -> Callable[..., Any]:
    """``module.name(config, log=..., progress=...)``, imported when it runs (some take no ``progress``)."""
    def run(config, log=print, progress=True):
        fn = _attr(module, name)()
        return fn(config, log=log, progress=progress) if takes_progress else fn(config, log=log)
    return run


def _checker(module: str, name: str) -> Callable[[Any], Any]:
    return lambda config: _attr(module, name)()(config)


def _rehearser(kind: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """``llmrec.experiments.rehearsal.rehearse_<kind>``, imported when a rehearsal runs."""
    return lambda data, rehearsal: _attr("llmrec.experiments.rehearsal", f"rehearse_{kind}")()(data, rehearsal)


def source_fingerprint(config: dict[str, Any]) -> dict[str, str]:
    """The content hash of a prepare step's data set files, by content and relative name (never a path or a date:
    a fresh copy of the data, other mtimes, another folder, keeps the key); ``not found yet`` when they are not
    there (the step reports it, or downloads them, when it runs)."""
    from llmrec.data.registry import get_spec, input_files, resolve_source
    from llmrec.errors import LlmrecError
    from llmrec.llm.filehash import content_sha256

    try:
        source = resolve_source(config["dataset"], config.get("path"), config.get("data_root"), False)
        spec = get_spec(config["dataset"])
        if spec.config is not None:  # a data set the user describes: the files its section names, as named there
            paths = input_files(spec.name, source, config.get(spec.name))
            if not all(p.is_file() for p in paths):
                return {"source": "not found yet"}
            named = [[p.name, content_sha256(p)] for p in paths]
            return {"source": hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()[:20]}
    except LlmrecError:
        return {"source": "not found yet"}
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    # each file is read once, then remembered by path, size and mtime
    named = [[p.name if p == source else str(p.relative_to(source)), content_sha256(p)] for p in files]
    return {"source": hashlib.sha256(json.dumps(named, sort_keys=True, default=str).encode()).hexdigest()[:20]}


STEP_KINDS: Registry[StepKind] = Registry("step kind", key="step", describe=lambda k: k.description)


def register_step_kind(kind: StepKind) -> StepKind:
    """Add (or replace) a step kind under its name: experiment files can then give ``<name>: <config>`` steps."""
    return STEP_KINDS.register(kind)


for _kind in (
    StepKind("prepare", _attr("llmrec.data.prepare", "PrepareConfig"), "out",
             _runner("llmrec.data.prepare", "prepare", takes_progress=False),
             _checker("llmrec.data.prepare", "check_prepare"), marker="meta.json", transient=("overwrite",),
             rehearse=_rehearser("prepare"),
             inputs=source_fingerprint, description="data prepare config (file or mapping)"),
    StepKind("retrieve", _attr("llmrec.retrieval", "RetrievalConfig"), "out", _runner("llmrec.retrieval", "retrieve"),
             _checker("llmrec.retrieval.transform", "check_retrieve"), marker="meta.json", rehearse=_rehearser("retrieve"),
             # how SUBR's memory is spent does not change its output (the passes are exact)
             transient=("overwrite", "dense_pass_mib"),
             description="retrieve config (SUBR)"),
    StepKind("summarize", _attr("llmrec.summarize", "SummarizeConfig"), "out", _runner("llmrec.summarize", "summarize"),
             _checker("llmrec.summarize.transform", "check_summarize"), marker="meta.json", rehearse=_rehearser("summarize"),
             transient=("overwrite", "checkpoint_every", "checkpoint_seconds"), description="summarize config (LLM-TRSR)"),
    StepKind("train", _attr("llmrec.train", "TrainConfig"), "run_dir", _runner("llmrec.train.run", "train"),
             _checker("llmrec.train.run", "check_train"), transient=("resume", "tracking", "optim.shared_prefix"),
             artifacts=("adapter/adapter_config.json",), seeded=True, in_table=True, rehearse=_rehearser("train"),
             description="train config"),
    StepKind("evaluate", _attr("llmrec.evaluate", "EvaluateConfig"), "run_dir", _runner("llmrec.evaluate", "evaluate"),
             _checker("llmrec.evaluate", "check_evaluate"), transient=("resume", "checkpoint_every", "checkpoint_seconds", "tracking"),
             in_table=True, rehearse=_rehearser("evaluate"), description="evaluate config"),
    StepKind("baseline", _attr("llmrec.baselines.config", "BaselineConfig"), "run_dir",
             _runner("llmrec.baselines.run", "run_baseline"), _checker("llmrec.baselines.run", "check_baseline"),
             transient=("resume", "tracking"), seeded=True, in_table=True, rehearse=_rehearser("baseline"),
             inputs=lambda config: _attr("llmrec.baselines.itemtext", "step_inputs")()(config),  # item_text encoder
             description="baseline config (llmrec baseline)"),
    StepKind("stack", _attr("llmrec.baselines.stack", "StackConfig"), "run_dir", _runner("llmrec.baselines.stack", "stack"),
             _checker("llmrec.baselines.stack", "check_stack"), in_table=True,
             rehearse=_rehearser("stack"), description="stack config: a logistic regression over other runs' scores, fitted on validation"),
):
    register_step_kind(_kind)
