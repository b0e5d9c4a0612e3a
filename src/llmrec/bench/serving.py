"""``llmrec bench serve``: a bounded load test of ``llmrec serve`` over loopback HTTP.

The service (model, adapter, prepared folder) is loaded once; for micro-batching on and off it
runs in this process under uvicorn on ``127.0.0.1`` (a free port), and C client threads send
real HTTP requests built from the test split (the user's history + ``candidates`` items: the
sample's target, then other catalogue items) until ``requests`` requests are answered or
``max_seconds`` pass, whichever comes first: the test stops by itself. Figures per setting:
requests/s, p50/p99 latency, errors, and the batcher's mean prompts per scoring call.
Needs ``pip install 'llmrec[serve]'`` (FastAPI, uvicorn and the httpx client).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from llmrec.bench.machine import machine_info


def request_bodies(service, data: str, n: int, candidates: int) -> list[dict[str, Any]]:
    """``n`` request bodies from the test split's first samples (their histories and ratings)."""
    from llmrec.data.prepared import PreparedData
    from llmrec.serve.service import request_body

    table = PreparedData.load(data).split("test").slice(0, n).to_pylist()
    catalogue = sorted(service.items)
    bodies = []
    for i, row in enumerate(table):
        first = list(row["candidates"]) if "candidates" in row else [row["item"]]
        others = [catalogue[(i * 7919 + j * 104729) % len(catalogue)] for j in range(candidates)]
        bodies.append(request_body(row, (first + others)[:candidates]))
    return bodies


class _Server:
    """uvicorn on a free loopback port, in a thread of this process."""

    start_timeout_s = 120.0

    def __init__(self, app):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:  # a server that dies or never binds fails here instead of hanging
            if not self.thread.is_alive():
                raise RuntimeError("the benchmark's uvicorn server stopped before it started")
            if time.monotonic() > deadline:
                self.server.should_exit = True
                raise RuntimeError(f"the benchmark's uvicorn server did not start within {self.start_timeout_s:g} s")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def load_once(url: str, bodies: list[dict], clients: int, requests: int, max_seconds: float) -> dict[str, Any]:
    """C clients send ``requests`` requests (cycling over ``bodies``) or stop at ``max_seconds``."""
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    next_index = iter(range(requests))
    deadline = time.perf_counter() + max_seconds

    def client() -> None:
        nonlocal errors
        with httpx.Client(timeout=max_seconds + 60) as http:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    ok = http.post(f"{url}/v1/score", json=bodies[i % len(bodies)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    errors += 0 if ok else 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000
    batcher = httpx.get(f"{url}/metrics").json()["batcher"]
    return {"clients": clients, "requests": len(latencies), "errors": errors, "wall_s": round(wall, 2),
            "requests_per_s": round(len(latencies) / wall, 3) if wall else None,
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
            "mean_batch_prompts": batcher["mean_batch_prompts"], "batches": batcher["batches"]}


def run(config, clients: list[int], requests: int, candidates: int, max_seconds: float,
        log: Callable[[str], None] = print, loaded=None) -> dict[str, Any]:
    """Every client count with micro-batching on and off; a result dict for BENCHMARKS.md
    (``loaded``: an already loaded model, e.g. a tiny one in tests)."""
    from llmrec.serve.app import create_app
    from llmrec.serve.service import RecommenderService

    service = RecommenderService.load(config, loaded=loaded, log=log)
    bodies = request_bodies(service, config.data, max(requests, 1), candidates)
    with _Server(create_app(service)) as url:  # warm-up: first calls allocate and compile
        load_once(url, bodies, 1, 2, max_seconds)
    results = []
    for batching in (False, True):
        service.limits = config.server.model_copy(update={"micro_batching": batching})
        for c in clients:
            with _Server(create_app(service)) as url:
                r = load_once(url, bodies, c, requests, max_seconds)
            r["micro_batching"] = batching
            log(f"micro-batching {'on ' if batching else 'off'} {c:>3} clients: {r['requests_per_s']} req/s, "
                f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {r['errors']} errors, "
                f"{r['mean_batch_prompts']} prompts per scoring call")
            results.append(r)
    by = {(r["micro_batching"], r["clients"]): r for r in results}
    ratios = {c: round(by[(True, c)]["requests_per_s"] / by[(False, c)]["requests_per_s"], 3)
              for c in clients if by[(False, c)]["requests_per_s"]}
    return {"machine": machine_info(), "service": service.describe, "candidates_per_request": candidates,
            "requests_per_setting": requests, "max_seconds": max_seconds,
            "server": config.server.model_dump(exclude={"api_key"}), "results": results,
            "micro_batching_speedup": ratios}
