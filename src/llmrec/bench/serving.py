"""``llmrec bench serve``: a bounded load test of ``llmrec serve`` over loopback HTTP.

The service (model, adapter, prepared folder) is loaded once; for micro-batching on and off it
runs in this process under uvicorn on ``127.0.0.1`` (a free port), and C client threads send
real HTTP requests built from the test split (the user's history + ``candidates`` items: the
sample's target, then other catalogue items) until ``requests`` requests are answered or
``max_seconds`` pass, whichever comes first: the test stops by itself. Figures per setting:
requests/s, p50/p99 latency, errors, and the batcher's mean prompts per scoring call.

A mixed load: ``candidates=[1, 32]`` gives client ``i`` requests of ``candidates[i % 2]`` items, and the latency
percentiles are reported per request size as well (``by_candidates``), which is where the batcher's ``admission``
(``continuous`` vs ``request``, each a setting of its own with ``admissions``) shows: a one-item request behind a
32-item one.
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


def _percentiles(seconds: list[float]) -> dict[str, Any]:
    lat = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None}


def load_once(url: str, bodies: dict[int, list[dict]] | list[dict], clients: int, requests: int,
              max_seconds: float) -> dict[str, Any]:
    """C clients send ``requests`` requests or stop at ``max_seconds``; ``bodies`` maps a request size (candidates)
    to its bodies, client ``i`` sending the ``i % len(bodies)``-th size's (cycling over them). Client ``i`` sends
    requests ``i, i + C, i + 2C, ...``: a fixed share, so every setting does the same work even when some
    clients' requests are cheaper than others'."""
    import httpx

    by_size = bodies if isinstance(bodies, dict) else {len(bodies[0]["candidates"]): bodies}
    sizes = list(by_size)
    latencies: list[float] = []
    sized: dict[int, list[float]] = {n: [] for n in sizes}
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + max_seconds

    def client(first: int, size: int) -> None:
        nonlocal errors
        mine = by_size[size]
        with httpx.Client(timeout=max_seconds + 60) as http:
            for i in range(first, requests, clients):
                if time.perf_counter() >= deadline:
                    return
                t0 = time.perf_counter()
                try:
                    ok = http.post(f"{url}/v1/score", json=mine[i % len(mine)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    sized[size].append(latencies[-1])
                    errors += 0 if ok else 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client, i, sizes[i % len(sizes)]) for i in range(clients)]:
            f.result()
    wall = time.perf_counter() - t0
    batcher = httpx.get(f"{url}/metrics").json()["batcher"]
    out = {"clients": clients, "requests": len(latencies), "errors": errors, "wall_s": round(wall, 2),
           "requests_per_s": round(len(latencies) / wall, 3) if wall else None, **_percentiles(latencies),
           "mean_batch_prompts": batcher["mean_batch_prompts"], "batches": batcher["batches"]}
    if len(sizes) > 1:
        out["by_candidates"] = {n: {"requests": len(v), **_percentiles(v)} for n, v in sized.items() if v}
    return out


def run(config, clients: list[int], requests: int, candidates: int | list[int], max_seconds: float,
        log: Callable[[str], None] = print, loaded=None, admissions: list[str] | None = None) -> dict[str, Any]:
    """Every client count with micro-batching off, then on with each of ``admissions`` (default: the config's
    ``server.admission``); a result dict for BENCHMARKS.md (``loaded``: an already loaded model, e.g. a tiny one in
    tests). ``micro_batching_speedup`` compares the first admission with micro-batching off."""
    from llmrec.serve.app import create_app
    from llmrec.serve.service import RecommenderService

    sizes = [candidates] if isinstance(candidates, int) else list(dict.fromkeys(candidates))
    admissions = admissions or [config.server.admission]
    service = RecommenderService.load(config, loaded=loaded, log=log)
    bodies = {n: request_bodies(service, config.data, max(requests, 1), n) for n in sizes}
    with _Server(create_app(service)) as url:  # warm-up: first calls allocate and compile
        load_once(url, bodies, 1, 2, max_seconds)
    results = []
    for batching, admission in [(False, None), *((True, a) for a in admissions)]:
        update = {"micro_batching": batching} | ({"admission": admission} if admission else {})
        service.limits = config.server.model_copy(update=update)
        for c in clients:
            with _Server(create_app(service)) as url:
                r = load_once(url, bodies, c, requests, max_seconds)
            r["micro_batching"], r["admission"] = batching, admission
            sized = "".join(f"; {n} candidates p50 {v['p50_ms']} / p99 {v['p99_ms']} ms"
                            for n, v in r.get("by_candidates", {}).items())
            log(f"micro-batching {f'on ({admission})' if batching else 'off'} {c:>3} clients: "
                f"{r['requests_per_s']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {r['errors']} errors, "
                f"{r['mean_batch_prompts']} prompts per scoring call{sized}")
            results.append(r)
    by = {(r["micro_batching"], r["admission"], r["clients"]): r for r in results}
    ratios = {c: round(by[(True, admissions[0], c)]["requests_per_s"] / by[(False, None, c)]["requests_per_s"], 3)
              for c in clients if by[(False, None, c)]["requests_per_s"]}
    return {"machine": machine_info(), "service": service.describe,
            "candidates_per_request": sizes[0] if len(sizes) == 1 else sizes,
            "requests_per_setting": requests, "max_seconds": max_seconds,
            "server": config.server.model_dump(exclude={"api_key"}), "results": results,
            "micro_batching_speedup": ratios}
