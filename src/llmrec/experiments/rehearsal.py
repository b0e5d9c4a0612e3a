"""A rehearsal of an experiment on a CPU: every step of the real file, tiny random models, toy sizes.

``llmrec run FILE --rehearse`` (or :func:`rehearse`) runs the same steps, rows, pairs, curves and
report as the real file, in minutes and without a GPU, so that a paper-scale experiment that would
break after an hour on a rented GPU breaks here first. Each step's config is read as the real run
would read it (its file, its ``set``, ``--set``), then changed by its kind's ``rehearse`` function
(on the :data:`~llmrec.experiments.steps.STEP_KINDS` record):

* every language model (a train / evaluate / summarize step's ``model``, a retrieve step's
  encoder, a baseline's ``item_text`` encoder) becomes a tiny random model of the same
  architecture (:func:`llmrec.llm.tiny.build_tiny_model`: LLaMA for Vicuna and Llama 2, Gemma 3
  for the default model) on the CPU, at the dtype the file asks for (bfloat16 runs on a CPU);
* sizes shrink: at most :attr:`Rehearsal.train_samples` training samples, one epoch, at most
  :attr:`Rehearsal.limit` samples in every scored subset (selection, test, a stack's fit), at most
  :attr:`Rehearsal.new_tokens` generated tokens per summary, the first :attr:`Rehearsal.seeds` seeds of a
  row; K, prompt budgets, batch sizes, gradient accumulation, LoRA, dtypes and the data folders stay as
  written.

The rehearsed experiment is named ``<name>-rehearsal`` (its folder is never the real one) and
logs to no tracker. Its numbers are noise; what it shows is that every step runs.

A **smoke run** (``llmrec run FILE --smoke``, :meth:`Rehearsal.smoke`) is the same with the file's own
models on its own devices and 50 samples: the first minutes on the rented GPU, before the full table.

>>> r = Rehearsal(models="runs/x/.rehearsal/models")
>>> r.cap(None, r.limit), r.cap(2000, r.limit), r.cap(8, r.limit)
(24, 24, 8)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrec.configfile import apply_overrides
from llmrec.experiments.config import ExperimentConfig, Step
from llmrec.experiments.steps import STEP_KINDS

__all__ = ["Rehearsal", "rehearsal_for", "rehearse", "rehearsed_experiment"]


@dataclass
class Rehearsal:
    """The toy sizes of a rehearsal and where its tiny models go (one per architecture)."""

    models: str | Path | None  # None: keep the file's models and devices (a smoke run on the real hardware)
    train_samples: int = 16
    limit: int = 24
    epochs: float = 1.0
    new_tokens: int = 8
    seeds: int = 2  # a row of more seeds keeps its first two (the mean ± std path still runs)
    texts: list[str] = field(default_factory=list)  # what the tiny tokenizers are trained on
    log: Callable[[str], None] = print
    built: dict[str, str] = field(default_factory=dict)  # model name -> tiny folder

    @staticmethod
    def cap(value: int | None, most: int) -> int:
        """``value`` capped at ``most`` (None, "all of it", becomes ``most``)."""
        return most if value is None else min(int(value), most)

    @property
    def kind(self) -> str:
        """``rehearsal`` (tiny models) or ``smoke`` (the file's models): the suffix of the experiment's name and of
        its default folder."""
        return "smoke" if self.models is None else "rehearsal"

    @classmethod
    def smoke(cls, log: Callable[[str], None] = print) -> Rehearsal:
        """The sizes of a smoke run (``llmrec run FILE --smoke``): the file's own models on its own devices, 50
        training and 50 scored samples, one epoch, one seed, 32 new tokens per summary."""
        return cls(models=None, train_samples=50, limit=50, new_tokens=32, seeds=1, log=log)

    def model(self, section: dict[str, Any] | None) -> dict[str, Any]:
        """A model section with the tiny model of the same architecture, on the CPU, at the same dtype (a smoke
        run keeps the section)."""
        from llmrec.errors import LlmrecError
        from llmrec.llm.tiny import build_tiny_model
        from llmrec.planning.shapes import model_shape

        section = dict(section or {})
        if self.models is None:
            return section
        name = str(section.get("name", "default"))
        if name not in self.built:
            try:
                model_type = model_shape(name).model_type
            except LlmrecError:
                model_type = "llama"
                self.log(f"rehearsal: the architecture of {name} is not known here; a tiny LLaMA stands in")
            folder = Path(self.models) / model_type
            if not folder.exists():
                self.log(f"rehearsal: building a tiny random {model_type} model in {folder}")
            self.built[name] = str(build_tiny_model(model_type, folder, self.texts))
        section.update(name=self.built[name], device="cpu", gguf_file=None)
        if section.get("backend", "transformers") != "transformers":  # vLLM needs a GPU, llama.cpp a GGUF file
            section["backend"] = "transformers"
        section.pop("quantize", None)  # int8 needs the real model's calibration; the tiny one scores unquantized
        if section.get("attn_implementation") == "flash_attention_2":
            section["attn_implementation"] = None
        return section

    def encoder(self, section: dict[str, Any] | None) -> dict[str, Any]:
        """An item-text encoder section (retrieve, a baseline's item_text) with the tiny model: an LLM encoder keeps
        its kind; a sentence-transformers encoder (a download) becomes a tiny LLM one; a vector file stays."""
        section = dict(section or {})
        if section.get("kind", "llm") == "file" or self.models is None:
            return section
        section["kind"] = "llm"
        section["model"] = self.model(section.get("model"))
        return section


def _nested(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` as a fresh dict (an absent or None section becomes {})."""
    data[key] = dict(data.get(key) or {})
    return data[key]


def rehearse_prepare(data: dict[str, Any], r: Rehearsal) -> dict[str, Any]:
    """A prepare step runs as written: it is CPU work already, and later steps read what it makes."""
    return data


def rehearse_train(data: dict[str, Any], r: Rehearsal) -> dict[str, Any]:
    data["model"] = r.model(data.get("model"))
    data["train_samples"] = r.cap(data.get("train_samples"), r.train_samples)
    optim = _nested(data, "optim")
    optim["epochs"] = min(float(optim.get("epochs", r.epochs)), r.epochs)
    if optim.get("max_steps", -1) not in (-1, None):
        optim["max_steps"] = min(int(optim["max_steps"]), 4)
    if optim.get("mixed_precision") in ("fp16", "bf16"):  # autocast needs a GPU; the dtype still applies
        optim["mixed_precision"] = "auto"
    selection = _nested(data, "selection")
    selection["limit"] = r.cap(selection.get("limit", 200), r.limit)
    test = _nested(data, "test")
    test["limit"] = r.cap(test.get("limit"), r.limit)
    if (data.get("instruction") or {}).get("data"):
        instruction = _nested(data, "instruction")
        instruction["limit"] = r.cap(instruction.get("limit"), r.train_samples)
        instruction["epochs"] = min(float(instruction.get("epochs", 1.0)), r.epochs)
    return data


def rehearse_evaluate(data: dict[str, Any], r: Rehearsal) -> dict[str, Any]:
    data["model"] = r.model(data.get("model"))
    data["limit"] = r.cap(data.get("limit"), r.limit)
    return data


def rehearse_summarize(data: dict[str, Any], r: Rehearsal) -> dict[str, Any]:
    data["model"] = r.model(data.get("model"))
    limits = dict(data.get("limits") or {})
    for split, most in (("train", r.train_samples), ("valid", r.limit), ("test", r.limit)):
        limits[split] = r.cap(limits.get(split), most)
    data["limits"] = limits
    generation = _nested(data, "generation")
    generation["max_new_tokens"] = r.cap(generation.get("max_new_tokens"), r.new_tokens)
    return data


def rehearse_retrieve(data: dict[str, Any], r: Rehearsal) -> dict[str, Any]:
    data["encoder"] = r.encoder(data.get("encoder"))
    return data


def rehearse_baseline(data: dict[str, Any], r: Rehearsal) -> dict[str, Any]:
    data["train_samples"] = r.cap(data.get("train_samples"), r.train_samples * 16)
    train = _nested(data, "train")
    train["epochs"] = min(int(train.get("epochs", 1)), max(1, int(r.epochs)))
    for part in ("valid", "test"):
        section = _nested(data, part)
        section["limit"] = r.cap(section.get("limit"), r.limit)
    if data.get("item_text"):
        item_text = _nested(data, "item_text")
        item_text["encoder"] = r.encoder(item_text.get("encoder"))
    return data


def rehearse_stack(data: dict[str, Any], r: Rehearsal) -> dict[str, Any]:
    for part in ("valid", "test"):
        section = _nested(data, part)
        section["limit"] = r.cap(section.get("limit"), r.limit)
    return data


def _step_data(step: Step, experiment_file: Path | None, extra: tuple[str, ...]) -> dict[str, Any]:
    """The step's config as the real run reads it: its file or mapping, its ``set``, then ``--set``."""
    data = apply_overrides(copy.deepcopy(step.config_data(experiment_file)),
                           [*step.set, *(extra if STEP_KINDS[step.kind].in_table else ())])
    data.pop("tracking", None)  # a rehearsal logs to no tracker
    return data


def _item_texts(paths: Iterable[str], most: int = 20_000) -> list[str]:
    """Item texts of the prepared folders a file names (what the tiny tokenizers learn their merges from)."""
    import pyarrow.parquet as pq

    texts: list[str] = []
    for path in dict.fromkeys(paths):
        items = Path(path) / "items.parquet"
        if not items.is_file():
            continue
        table = pq.read_table(items)
        for name in table.column_names:
            if name != "item" and table.schema.field(name).type in ("string", "large_string"):
                texts += [str(v) for v in table.column(name).to_pylist()[:most] if v]
    return texts


def rehearsed_experiment(experiment: ExperimentConfig, rehearsal: Rehearsal, *, experiment_file: str | Path | None = None,
                         extra: tuple[str, ...] = ()) -> ExperimentConfig:
    """``experiment`` with every step's config read, overridden and rehearsed (inline, ``set`` applied); named
    ``<name>-rehearsal`` (``<name>-smoke`` for a smoke run), tracking off. Tiny models are built in
    ``rehearsal.models`` as steps need them."""
    from llmrec.experiments.config import map_strings
    from llmrec.prompts import TEMPLATES

    file = Path(experiment_file) if experiment_file else None
    datas = {s.name: _step_data(s, file, extra) for s in experiment.steps}
    if not rehearsal.texts and rehearsal.models is not None:
        folders: list[str] = []
        for data in datas.values():
            map_strings(data, lambda s: folders.append(s) or s)
        rehearsal.texts = [p.read_text() for p in TEMPLATES.values()] + _item_texts(folders)
    steps = []
    for step in experiment.steps:
        kind = STEP_KINDS[step.kind]
        data = datas[step.name]
        if kind.rehearse is not None:
            data = kind.rehearse(data, rehearsal)
        else:
            rehearsal.log(f"rehearsal: step {step.name!r} ({step.kind}) has no rehearsal settings; it runs as written")
        update: dict[str, Any] = {"source": data, "set": []}
        if step.seeds and len(step.seeds) > rehearsal.seeds:
            update["seeds"] = step.seeds[:rehearsal.seeds]
        steps.append(step.model_copy(update=update))
    what = (f"Smoke run (the file's models, {rehearsal.train_samples} training and {rehearsal.limit} scored "
            "samples) of: " if rehearsal.kind == "smoke" else
            "Rehearsal on a CPU (tiny random models, toy sizes; the numbers are noise) of: ")
    return experiment.model_copy(update={"name": f"{experiment.name}-{rehearsal.kind}", "steps": steps,
                                         "tracking": type(experiment.tracking)(),
                                         "description": what + (experiment.description or experiment.name)})


def rehearsal_for(experiment_name: str, out: str | Path | None = None, *, smoke: bool = False,
                  log: Callable[[str], None] = print, **sizes: Any) -> tuple[Rehearsal, Path]:
    """The :class:`Rehearsal` of ``--rehearse`` (tiny models in ``OUT/.rehearsal/models``) or ``--smoke``, ``sizes``
    applied, and its folder ``out`` (default ``runs/<name>-rehearsal`` or ``runs/<name>-smoke``)."""
    out = Path(out) if out is not None else Path("runs") / f"{experiment_name}-{'smoke' if smoke else 'rehearsal'}"
    rehearsal = Rehearsal.smoke(log=log) if smoke else Rehearsal(models=out / ".rehearsal" / "models", log=log)
    for name, value in sizes.items():
        setattr(rehearsal, name, value)
    return rehearsal, out


def rehearse(experiment_file: str | Path, out: str | Path | None = None, *, smoke: bool = False,
             extra: tuple[str, ...] = (), only: tuple[str, ...] = (), log: Callable[[str], None] = print,
             progress: bool = True, **sizes: Any) -> dict[str, Any]:
    """Rehearse an experiment file on this CPU (``llmrec run FILE --rehearse``) into ``out``
    (default ``runs/<name>-rehearsal``), or with ``smoke`` run it with its own models on 50 samples per step
    (``--smoke``, ``runs/<name>-smoke``); returns its table. ``sizes`` override :class:`Rehearsal`'s sizes.

    Example (needs the prepared folders the file names, as the real run does)::

        import llmrec

        table = llmrec.rehearse("configs/tallrec/gpu-table.yaml")
        print(table["markdown"])   # every row of the GPU table, from tiny LLaMA models
    """
    from llmrec.experiments.config import load_experiment
    from llmrec.experiments.table import run_experiment

    experiment = load_experiment(experiment_file)
    rehearsal, out = rehearsal_for(experiment.name, out, smoke=smoke, log=log, **sizes)
    rehearsed = rehearsed_experiment(experiment, rehearsal, experiment_file=experiment_file, extra=extra)
    return run_experiment(rehearsed, out, only=only, log=log, progress=progress)
