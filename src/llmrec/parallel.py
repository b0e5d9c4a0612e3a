"""Work spread over workers with Ray Data, or done here: one interface for both.

A job is a list of *tasks* (a chunk of samples to score, a chunk of items to encode, a block of
users to retrieve for) and a *worker factory*: a picklable callable that builds, once per worker,
the function that turns one task into its result (loading the model there, not in the driver).

* ``engine.kind: local`` runs the tasks one after the other in this process;
* ``engine.kind: ray`` makes a Ray Dataset of task numbers and ``map_batches`` it through
  ``engine.workers`` actors (Ray Data's actor pool: each builds its worker once), streaming the
  results back as they finish.

Either way the caller receives ``(task number, result)`` pairs and writes its partial outputs as
they come (the partial files that make every long step resumable), then merges them in task order,
so both engines write the same files. Ray schedules; llmrec only cuts the work into tasks.

>>> settings = EngineSettings()
>>> sorted(map_tasks(["a", "b"], lambda: str.upper, settings))
[(0, 'A'), (1, 'B')]
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from llmrec.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["EngineSettings", "map_tasks"]


class EngineSettings(BaseModel):
    """Where the work of a step runs: here, or on Ray workers."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "ray"] = Field("local", description="local: this process; ray: Ray Data actors")
    workers: int = Field(2, ge=1, description="Ray actors (each loads the model once)")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs Ray reserves per actor (its torch threads)")
    gpus_per_worker: float = Field(0.0, ge=0, description="GPUs Ray reserves per actor (fractions share a GPU)")
    address: str | None = Field(None, description="an existing Ray cluster (ray.init address, e.g. 'auto'); "
                                "None: start a local one for this command")


def map_tasks(tasks: Sequence[T], make_worker: Callable[[], Callable[[T], R]], settings: EngineSettings,
              ) -> Iterator[tuple[int, R]]:
    """``(i, worker(tasks[i]))`` for every task, in the order they finish (task order when local)."""
    if not tasks:
        return
    if settings.kind == "local":
        worker = make_worker()
        for i, task in enumerate(tasks):
            yield i, worker(task)
        return
    yield from _ray_map(tasks, make_worker, settings)


class _RayWorker:
    """A Ray Data actor: builds the worker once, then maps batches of task numbers to pickled results."""

    def __init__(self, make_worker: Callable[[], Callable[[Any], Any]], tasks: Sequence[Any]) -> None:
        self.worker = make_worker()
        self.tasks = tasks

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        ids = [int(i) for i in batch["task"]]
        return {"task": ids, "result": [pickle.dumps(self.worker(self.tasks[i])) for i in ids]}


def _ray_init(settings: EngineSettings):
    try:
        import ray
    except ImportError:
        raise ConfigError('engine.kind: ray needs Ray Data: pip install "llmrec[ray]"') from None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if settings.address:
            kwargs["address"] = settings.address
        else:  # a local cluster just big enough for the workers (and Ray Data's own bookkeeping)
            kwargs["num_cpus"] = max(1, int(round(settings.workers * settings.cpus_per_worker)))
            if settings.gpus_per_worker:
                kwargs["num_gpus"] = max(1, int(round(settings.workers * settings.gpus_per_worker)))
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
        ray.init(**kwargs)
    return ray


def _ray_map(tasks: Sequence[T], make_worker, settings: EngineSettings) -> Iterator[tuple[int, R]]:
    ray = _ray_init(settings)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    dataset = ray.data.from_items([{"task": i} for i in range(len(tasks))], override_num_blocks=len(tasks))
    mapped = dataset.map_batches(_RayWorker, fn_constructor_kwargs={"make_worker": make_worker, "tasks": list(tasks)},
                                 batch_size=1, batch_format="numpy", num_cpus=settings.cpus_per_worker,
                                 num_gpus=settings.gpus_per_worker or None,
                                 compute=ray.data.ActorPoolStrategy(size=settings.workers,
                                                                    max_tasks_in_flight_per_actor=1))
    for row in mapped.iter_rows():
        yield int(row["task"]), pickle.loads(row["result"])
