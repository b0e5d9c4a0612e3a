"""``llmrec bench retrieval``: item encoding speed, and SUBR over a whole prepared folder.

* encoding: items/s of the LLM item encoder on ``encode_items`` item texts (cache bypassed), its
  GFLOP/s against the machine's float32 matmul rate on the model's MLP shape (:func:`matmul_gflops`),
  and the time to load a finished encoding from the cache;
* SUBR: :func:`~llmrec.retrieval.subr.subr_fast` against the straightforward
  :func:`~llmrec.retrieval.subr.subr_reference` on every sample of every split, each in its
  own process (so the peak memory is its own: loading reads only the columns SUBR needs), and
  whether their outputs are identical.

Both SUBR paths get the same item vectors (the cached encoding of the data's items when
there is one, else random unit vectors, which cost SUBR the same).
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

import numpy as np
import pyarrow as pa

from llmrec.bench.machine import machine_info, peak_rss_mib

# A SUBR worker process over a whole prepared folder (ML-1M: 4-8 s fast, ~2.5 min straightforward;
# BENCHMARKS.md) that runs past this has hung.
SUBR_WORKER_TIMEOUT_S = 3600


def bench_encoding(data: str, model_name: str, n_items: int, batch_size: int, log: Callable[[str], None]) -> dict:
    """Items/s of the LLM encoder on the first ``n_items`` items (no cache), and a cache reload's time."""
    from llmrec.data.prepared import PreparedData
    from llmrec.llm import ModelConfig, load_model
    from llmrec.llm.embed import mean_pooled
    from llmrec.retrieval import EncoderSettings, encode_items, item_texts

    prepared = PreparedData.load(data)
    settings = EncoderSettings(model=ModelConfig(name=model_name), batch_size=batch_size)
    loaded = load_model(settings.model)
    texts = item_texts(prepared.items.head(n_items), settings.item_template)
    tok = loaded.tokenizer
    ids = [tok(t, truncation=True, max_length=settings.max_tokens)["input_ids"] for t in texts]
    mean_pooled(loaded.model, ids[:batch_size], pad_token_id=tok.pad_token_id or 0, batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    mean_pooled(loaded.model, ids, pad_token_id=tok.pad_token_id or 0, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    log(f"encoding: {len(ids)} items in {seconds:.1f} s")
    from llmrec.llm.scoring import count_non_embedding_parameters

    weights = count_non_embedding_parameters(loaded.model)
    gflops = 2 * weights * sum(len(i) for i in ids) / seconds / 1e9  # weight FLOPs (attention over <= 64 tokens: little)
    encode_items(prepared.items, settings, loaded=loaded, log=log)  # fills the cache (once per data set)
    t0 = time.perf_counter()
    cached = encode_items(prepared.items, settings, log=log, progress=False)
    reload_s = time.perf_counter() - t0
    return {"items": len(ids), "mean_tokens": round(float(np.mean([len(i) for i in ids])), 1),
            "batch_size": batch_size, "seconds": round(seconds, 2), "items_per_s": round(len(ids) / seconds, 1),
            "gflops": round(gflops, 1), "matmul_peak_gflops": round(matmul_gflops(loaded.model), 1),
            "cache_reload_s": round(reload_s, 3), "cache_hit": bool(cached.info.get("cached"))}


def matmul_gflops(model, rows: int = 4096, repeats: int = 20) -> float:
    """This machine's float32 matrix-product rate (GFLOP/s) on the shape of ``model``'s MLP (hidden x intermediate),
    with the threads torch uses: the ceiling of a decoder's throughput."""
    from llmrec.planning.devices import measured_matmul_gflops

    cfg = getattr(model, "config", None)
    hidden = int(getattr(cfg, "hidden_size", 640))
    return measured_matmul_gflops(hidden, int(getattr(cfg, "intermediate_size", 4 * hidden)), rows, repeats)


def _vectors(data: str, model_name: str, log: Callable[[str], None]) -> tuple[np.ndarray, str]:
    """The data's cached item vectors when there are some (projected), else random unit vectors."""
    from llmrec.data.prepared import PreparedData
    from llmrec.llm import ModelConfig
    from llmrec.retrieval import EncoderSettings, project
    from llmrec.retrieval.encode import cached_items

    prepared = PreparedData.load(data)
    settings = EncoderSettings(model=ModelConfig(name=model_name))
    found, _, _ = cached_items(prepared.items, settings)
    if found is not None:
        return project(found.vectors, settings.pca_dim)[0], f"cached {model_name} encoding"
    log("no cached item encoding of this data: SUBR runs on random unit vectors (same cost)")
    rng = np.random.default_rng(0)
    return project(rng.normal(size=(len(prepared.items), 512)), None)[0], "random unit vectors (512)"


def subr_worker(data: str, vectors_file: str, k: int, mode: str, out_file: str) -> dict[str, Any]:
    """One SUBR path over every sample of ``data`` (run in its own process by :func:`bench_subr`)."""
    from llmrec.data.prepared import PreparedData
    from llmrec.retrieval.encode import ItemVectors
    from llmrec.retrieval.subr import subr_fast, subr_reference
    from llmrec.retrieval.transform import Chronologies, _sample_arrays

    prepared = PreparedData.load(data)  # reads meta.json and footers; below, only the columns SUBR needs
    vectors = np.load(vectors_file)
    item_ids = prepared.table("items", columns=["item"])["item"].cast(pa.string()).to_pylist()
    chrono = Chronologies.read(prepared, ItemVectors(item_ids, vectors))
    _, users, ends = _sample_arrays(prepared, chrono, data)
    rss_before = peak_rss_mib()
    fn = subr_fast if mode == "fast" else subr_reference
    t0 = time.perf_counter()
    got = fn(chrono.rows, chrono.starts, users, ends, vectors, k)
    seconds = time.perf_counter() - t0
    np.savez(out_file, offsets=got.offsets, positions=got.positions, dots=got.dots)
    return {"mode": mode, "samples": int(len(ends)), "mean_prior_history": round(float(ends.mean()), 1),
            "seconds": round(seconds, 2), "samples_per_s": round(len(ends) / seconds),
            "peak_rss_mib": round(peak_rss_mib(), 1), "rss_before_mib": round(rss_before, 1)}


def bench_subr(data: str, model_name: str, k: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Fast and straightforward SUBR over ``data``, each in a fresh process; identical outputs?"""
    vectors, source = _vectors(data, model_name, log)
    out: dict[str, Any] = {"data": data, "k": k, "vectors": source}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "vectors.npy", vectors)
        for mode in ("fast", "straightforward"):
            log(f"SUBR ({mode}) over every sample of {data} ...")
            code = ("import json, sys; from llmrec.bench.retrieval import subr_worker; "
                    f"print(json.dumps(subr_worker({data!r}, {str(Path(tmp) / 'vectors.npy')!r}, {k}, {mode!r}, "
                    f"{str(Path(tmp) / (mode + '.npz'))!r})))")
            try:
                proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                                      timeout=SUBR_WORKER_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"SUBR worker ({mode}) did not finish within {SUBR_WORKER_TIMEOUT_S} s") from exc
            if proc.returncode != 0:
                raise RuntimeError(f"SUBR worker ({mode}) failed:\n{proc.stderr[-2000:]}")
            out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        a, b = np.load(Path(tmp) / "fast.npz"), np.load(Path(tmp) / "straightforward.npz")
        out["identical"] = all(np.array_equal(a[key], b[key]) for key in ("offsets", "positions", "dots"))
    out["speedup"] = round(out["straightforward"]["seconds"] / out["fast"]["seconds"], 1)
    return out


def run(data: str, model_name: str = "default", k: int = 10, encode_items_n: int = 512, batch_size: int = 32,
        encoding: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine_info()}
    if encoding:
        result["encoding"] = bench_encoding(data, model_name, encode_items_n, batch_size, log)
    result["subr"] = bench_subr(data, model_name, k, log)
    return result
