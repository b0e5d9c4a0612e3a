"""``llmrec plan``: the plan of every step of a train / evaluate / summarize config or an experiment on a device
(the per-step plans: :mod:`llmrec.planning.steps`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmrec.errors import ConfigError
from llmrec.planning.devices import Device
from llmrec.planning.steps import PlanRow, plan_config, totals

__all__ = ["config_class", "plan_file", "totals"]


def _existing_data(run) -> Any:
    """A config whose ``data`` (made by an earlier step, not there yet) reads that step's input instead: the
    rows are the same, their histories retrieved or summarised. Data a prepare step makes is read from the
    prepared folder of the same data set and protocol (``prepared/<dataset>-<protocol>``) when that exists."""
    config = run.config
    data = getattr(config, "data", None)
    while data is not None and not Path(data).exists() and run.upstream:
        source = run.upstream[0].config
        if hasattr(source, "protocol") and hasattr(source, "dataset"):  # a prepare step
            data = f"prepared/{source.dataset}-{source.protocol}"
            if not Path(data).exists():
                raise ConfigError(f"{run.label}: a plan counts prompt tokens on prepared data; run `llmrec data "
                                  f"prepare {source.dataset} -p {source.protocol}` first (or --set data=FOLDER)")
        elif hasattr(source, "data"):
            data = source.data
        else:
            break
        run = run.upstream[0]
    return config if data == getattr(config, "data", None) else config.model_copy(update={"data": data})


def plan_file(path: str | Path, device: Device | str = "h100", *, gpus: int = 1, sharding: str = "none",
              overrides: tuple[str, ...] = (), log: Callable[[str], None] = lambda m: None) -> list[PlanRow]:
    """Plan an experiment file (every run of every step) or a single train / evaluate / summarize config on
    ``device`` (a :class:`~llmrec.planning.Device` or a name: h100, a100-40gb, l4, cpu, ...); ``llmrec.plan``.

    Example (``totals`` sums the hours and finds the peak)::

        rows = llmrec.plan("configs/tallrec/gpu-table.yaml", "a100-40gb")
        print(totals(rows))   # {'peak_gib': ..., 'hours': ..., 'fits': True}
    """
    from llmrec.configfile import read_yaml

    if isinstance(device, str):
        from llmrec.planning.devices import device_named

        device = device_named(device)

    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not a mapping of settings")
    if "rows" in raw or "steps" in raw:
        from llmrec.experiments import plan_experiment

        rows: list[PlanRow] = []
        out = Path("runs") / str(raw.get("name", Path(path).stem))  # where `llmrec run` writes by default
        for run in plan_experiment(path, out, extra=tuple(overrides)):
            log(f"planning {run.label}")
            config = _existing_data(run)
            data = getattr(config, "data", None)
            if isinstance(data, str) and not Path(data).exists():  # made outside this file (llmrec retrieve ...)
                rows.append(PlanRow(run.label, run.step.kind, None, f"not planned: {data} is not there yet (the "
                                    "prompt lengths come from it; make it first)"))
                continue
            rows += plan_config(run.step.kind, config, device, step=run.label, gpus=gpus, sharding=sharding)
        return rows
    kind = ("summarize" if "mode" in raw or "block_size" in raw else
            "train" if {"lora", "optim", "train_samples", "selection", "mix_data"} & set(raw) else "evaluate")
    from llmrec.configfile import load_config

    config = load_config(config_class(kind), overrides=list(overrides), base=raw, source=str(path))
    return plan_config(kind, config, device, gpus=gpus, sharding=sharding)


def config_class(kind: str):
    if kind == "train":
        from llmrec.train.config import TrainConfig

        return TrainConfig
    if kind == "summarize":
        from llmrec.summarize.config import SummarizeConfig

        return SummarizeConfig
    from llmrec.evaluate import EvaluateConfig

    return EvaluateConfig
