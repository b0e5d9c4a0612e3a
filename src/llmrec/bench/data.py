"""``llmrec bench data``: time and peak memory of data preparation, and metric speed.

Run in a fresh process so that the peak memory is that of the preparation itself.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from llmrec.bench.machine import machine_info, peak_rss_mib


def bench_prepare(dataset: str = "ml-1m", protocol: str = "rella", data_root: str | None = None,
                  path: str | None = None, repeats: int = 1) -> dict[str, object]:
    """Prepare ``dataset`` with ``protocol`` ``repeats`` times into a temporary folder."""
    from llmrec.data.prepare import PrepareConfig, prepare

    rss_before = peak_rss_mib()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            cfg = PrepareConfig(dataset=dataset, protocol=protocol, data_root=data_root, path=path, out=str(Path(tmp) / "out"))
            t0 = time.perf_counter()
            prepared, _, timings = prepare(cfg, log=lambda m: None)
            timings["total_s"] = time.perf_counter() - t0
            runs.append(timings)
    samples = sum(t.num_rows for t in prepared.splits.values())
    best = min(runs, key=lambda r: r["total_s"])
    return {
        "dataset": dataset,
        "protocol": protocol,
        "samples": samples,
        **{k: round(v, 3) for k, v in best.items()},
        "samples_per_s": round(samples / best["build_s"]),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "rss_before_mib": round(rss_before, 1),
    }


def bench_metrics(seed: int = 0) -> dict[str, object]:
    """Seconds for AUC/LogLoss on 1M scores and the ranking report on 100k x 21 candidates."""
    from llmrec.metrics import auc, log_loss, ranking_report

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 1_000_000)
    scores = np.clip(labels * 0.2 + rng.random(1_000_000) * 0.8, 0, 1)
    t0 = time.perf_counter()
    auc(labels, scores)
    log_loss(labels, scores)
    t_ctr = time.perf_counter() - t0
    rscores = rng.random((100_000, 21))
    rlabels = np.zeros((100_000, 21))
    rlabels[:, 0] = 1
    t0 = time.perf_counter()
    ranking_report(rscores, rlabels, ks=(3, 5, 10))
    t_rank = time.perf_counter() - t0
    return {"auc_logloss_1m_s": round(t_ctr, 3), "ranking_report_100k_x21_s": round(t_rank, 3)}


def run(dataset: str = "ml-1m", protocol: str = "rella", data_root: str | None = None,
        path: str | None = None, repeats: int = 1) -> dict[str, object]:
    return {
        "machine": machine_info(),
        "prepare": bench_prepare(dataset, protocol, data_root, path, repeats),
        "metrics": bench_metrics(),
    }
