"""``llmrec bench plan``: ``llmrec plan``'s figures for this CPU against measured runs of the same work.

Three small runs of the default model, each in a fresh process (so that its peak resident memory, ``VmHWM``, is
its own): a zero-shot ``evaluate`` of ``prompts`` test prompts, a ``train`` of ``steps`` LoRA steps (batch 8, one
epoch, one selection pass on 16 validation samples, 8 test samples) and a ``summarize`` of a few users' histories
(hierarchical, from a ranking folder). For each: the plan's peak memory and seconds on ``--gpu cpu`` (this
machine's measured matmul rate) next to the measured peak RSS and the seconds of the work the plan models
(scoring, training steps with their selection pass, generation; not imports and model loading, reported apart).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmrec.bench.machine import machine_info, peak_rss_mib

__all__ = ["measure", "run"]

WORKER_TIMEOUT_S = 3600


def _find(obj: Any, key: str) -> Any:
    """The first value of ``key`` anywhere in a nested dict."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = _find(v, key)
            if found is not None:
                return found
    return None


def measure(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run one ``kind`` (evaluate, train, summarize) of ``config`` in this process: its modelled seconds, the
    whole call's seconds and this process's peak RSS (run it in a fresh process)."""
    t0 = time.perf_counter()
    if kind == "evaluate":
        from llmrec.evaluate import EvaluateConfig, evaluate

        path, result = evaluate(EvaluateConfig(**config), log=lambda m: None)
        wall = time.perf_counter() - t0
        modelled = _find(result, "scoring_s") or wall - (_find(result, "model_load_s") or 0.0)
    elif kind == "train":
        from llmrec.train import TrainConfig, train

        path, result = train(TrainConfig(**config), log=lambda m: None)
        wall = time.perf_counter() - t0
        modelled = result["train"]["train_s_this_session"] + (_find(result.get("test", {}), "scoring_s") or 0.0)
    elif kind == "summarize":
        from llmrec.summarize import SummarizeConfig, summarize

        path, result = summarize(SummarizeConfig(**config), log=lambda m: None, progress=False)
        wall = time.perf_counter() - t0
        modelled = result["seconds"]["generate"]
        if not modelled:
            raise RuntimeError("bench plan: the summaries came from the cache; nothing was generated")
    else:
        raise ValueError(f"kind must be evaluate, train or summarize, not {kind!r}")
    return {"kind": kind, "modelled_s": round(float(modelled), 2), "call_s": round(wall, 2),
            "peak_rss_mib": round(peak_rss_mib(), 1)}


def _cases(data: str, ranking: str | None, tmp: Path, prompts: int, steps: int, users: int,
           model: str) -> list[tuple[str, dict]]:
    m = {"name": model}
    cases = [("evaluate", {"data": data, "limit": prompts, "run_dir": str(tmp / "evaluate"), "model": m}),
             ("train", {"data": data, "train_samples": 8 * steps, "run_dir": str(tmp / "train"), "model": m,
                        "optim": {"epochs": 1, "batch_size": 8},
                        "selection": {"limit": 16, "at_start": False}, "test": {"limit": 8}})]
    if ranking:
        # a fresh draw of users each time: summaries are cached by prompt, and a cached one costs nothing
        cases.append(("summarize", {"data": ranking, "out": str(tmp / "summaries"), "mode": "hierarchical", "model": m,
                                    "limits": {"train": users, "valid": users, "test": users},
                                    "seed": time.time_ns() % 1_000_003}))
    return cases


def run(data: str = "prepared/ml-100k-tallrec", ranking: str | None = "prepared/amazon-games-trsr", *,
        prompts: int = 64, steps: int = 8, users: int = 4, model: str = "default",
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Plan and measure each case (see the module docs); a result dict for BENCHMARKS.md."""
    from llmrec.evaluate import EvaluateConfig
    from llmrec.planning import cpu_device
    from llmrec.planning.devices import measured_matmul_gflops
    from llmrec.planning.steps import plan_config
    from llmrec.summarize import SummarizeConfig
    from llmrec.train import TrainConfig

    classes = {"evaluate": EvaluateConfig, "train": TrainConfig, "summarize": SummarizeConfig}

    gflops = measured_matmul_gflops()
    device = cpu_device(gflops)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for kind, config in _cases(data, ranking, tmp, prompts, steps, users, model):
            planned = plan_config(kind, classes[kind](**config), device)
            est = [r.estimate for r in planned if r.estimate is not None]
            plan_gib = max(e.gib for e in est)
            plan_s = sum(e.seconds for e in est)
            log(f"{kind}: planned {plan_gib:.2f} GiB, {plan_s:.1f} s; measuring in a fresh process ...")
            code = ("import json, sys; from llmrec.bench.planner import measure; "
                    f"print(json.dumps(measure({kind!r}, json.loads(sys.argv[1]))))")
            try:
                proc = subprocess.run([sys.executable, "-c", code, json.dumps(config)], capture_output=True,
                                      text=True, check=False, timeout=WORKER_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"bench plan: the {kind} run did not finish within {WORKER_TIMEOUT_S} s") from exc
            if proc.returncode != 0:
                raise RuntimeError(f"bench plan: the {kind} run failed: {proc.stderr.strip().splitlines()[-1:]}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            got.update(planned_gib=round(plan_gib, 3), planned_s=round(plan_s, 2),
                       measured_gib=round(got["peak_rss_mib"] / 1024, 3),
                       memory_ratio=round(got["peak_rss_mib"] / 1024 / plan_gib, 3),
                       time_ratio=round(got["modelled_s"] / plan_s, 3) if plan_s else None,
                       parts_gib={k: round(v / 2**30, 3) for e in est[:1] for k, v in e.parts.items()},
                       detail=[r.detail for r in planned])
            log(f"{kind}: measured {got['measured_gib']:.2f} GiB ({got['memory_ratio']:.2f}x the plan), "
                f"{got['modelled_s']:.1f} s ({got['time_ratio']}x)")
            rows.append(got)
    return {"machine": machine_info(), "matmul_gflops": round(gflops, 1), "data": data, "ranking": ranking,
            "results": rows}
