"""Plots written into run folders (matplotlib, no display needed)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ctr_plots(labels: np.ndarray, scores: np.ndarray, folder: Path, title: str) -> list[str]:
    """ROC curve and score histograms by label."""
    plt = _plt()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    if 0 < labels.sum() < len(labels):
        order = np.argsort(-scores, kind="stable")
        tp = np.concatenate([[0], np.cumsum(labels[order])]) / labels.sum()
        fp = np.concatenate([[0], np.cumsum(1 - labels[order])]) / (len(labels) - labels.sum())
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fp, tp, lw=1.5)
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}")
        fig.tight_layout()
        fig.savefig(folder / "roc.png", dpi=110)
        plt.close(fig)
        written.append("plots/roc.png")
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    bins = np.linspace(0, 1, 41)
    for value, name in ((1, "positive"), (0, "negative")):
        ax.hist(scores[labels == value], bins=bins, alpha=0.6, label=name)
    ax.set(xlabel="P(yes)", ylabel="samples", title=f"scores: {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "scores.png", dpi=110)
    plt.close(fig)
    written.append("plots/scores.png")
    return written


def rank_plot(ranks: np.ndarray, n_candidates: int, folder: Path, title: str) -> list[str]:
    """Histogram of the positive's rank among the candidates."""
    plt = _plt()
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.hist(ranks, bins=np.arange(1, n_candidates + 2) - 0.5)
    ax.set(xlabel="rank of the positive", ylabel="samples", title=f"ranks: {title}")
    fig.tight_layout()
    fig.savefig(folder / "ranks.png", dpi=110)
    plt.close(fig)
    return ["plots/ranks.png"]


def curve_plot(series: dict[str, list[tuple[float, float, float]]], path: Path, xlabel: str, ylabel: str,
               title: str, log_x: bool = False, references: dict[str, float] | None = None) -> str:
    """Lines of (x, mean, std) points with error bars, one per series (e.g. AUC vs K, AUC vs N), and
    dashed horizontal reference lines (label -> y: a model-free floor, a full-data model)."""
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, points in series.items():
        points = sorted(points)
        xs, means, stds = (np.array(v, dtype=float) for v in zip(*points))
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, lw=1.5, label=name)
    for (name, y), color in zip((references or {}).items(), itertools.cycle(("0.35", "tab:red", "tab:purple"))):
        ax.axhline(y, ls="--", lw=1, color=color, label=f"{name} ({y:.3f})")
    if log_x:
        from matplotlib.ticker import ScalarFormatter

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 64, 128, ... rather than 2^6, 2^7
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(series) + len(references or {}) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def attention_strips(results: list[dict], path: Path) -> str:
    """Heat strips, one per case: the answer position's attention on each history item (oldest first)."""
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    width = max(len(r["items"]) for r in results)
    fig, axes = plt.subplots(len(results), 1, figsize=(max(6.0, 1.1 * width), 1.9 * len(results)), squeeze=False)
    top = max((i["attention"] for r in results for i in r["items"]), default=1.0) or 1.0
    for ax, res in zip(axes[:, 0], results):
        ax.imshow(np.array([[i["attention"] for i in res["items"]]]), cmap="viridis", vmin=0, vmax=top, aspect="auto")
        labels = [i["title"][:18] + ("" if i.get("rating") is None else f"\n{i['rating']:g}") for i in res["items"]]
        ax.set_xticks(range(len(labels)), labels, fontsize=6)
        ax.set_yticks([])
        ax.set_title(f"{res['case']}: history share {res['history_share']:.3f}", fontsize=8, loc="left")
    first = results[0]
    fig.suptitle(f"attention of the answer position, sample {first['sample_id']} (target {first['target'][:40]}, "
                 f"label {first['label']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path.name


def calibration_plot(series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str, bins: int = 10) -> str:
    """Reliability diagram: observed positive rate against mean predicted P(yes) in equal-width bins, per run."""
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.0, 4.2))
    edges = np.linspace(0, 1, bins + 1)
    for name, (labels, scores) in series.items():
        labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
        which = np.clip(np.digitize(scores, edges) - 1, 0, bins - 1)
        xs, ys = [], []
        for b in range(bins):
            sel = which == b
            if sel.any():
                xs.append(scores[sel].mean())
                ys.append(labels[sel].mean())
        ax.plot(xs, ys, marker="o", ms=3, lw=1.2, label=name)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="mean predicted P(yes)", ylabel="observed positive rate", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def score_histograms(series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> str:
    """One small histogram of P(yes) by label per run, side by side."""
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(series)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    bins = np.linspace(0, 1, 31)
    for ax, (name, (labels, scores)) in zip(axes.ravel(), series.items()):
        labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
        for value, label in ((1, "positive"), (0, "negative")):
            ax.hist(scores[labels == value], bins=bins, alpha=0.6, label=label)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def ranking_by_k_plot(series: dict[str, dict[int, float]], path: Path, metric: str, title: str) -> str:
    """A ranking metric (e.g. Recall@k) against k, one line per run."""
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, points in series.items():
        ks = sorted(points)
        ax.plot(ks, [points[k] for k in ks], marker="o", lw=1.3, label=name)
    ax.set(xlabel="k", ylabel=f"{metric}@k", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def cost_plot(points: dict[str, tuple[float, float | None, float | None]], path: Path, metric: str,
              title: str) -> str | None:
    """Quality against cost, one point per row: ``metric`` against training seconds and against scoring samples/s
    (both log scale). ``points``: row -> (quality, training seconds or None, samples/s or None). A row without
    training (0 s: zero-shot) is drawn hollow, left of every trained row (a third of the shortest time, or of 1 s).
    None (nothing written) when no row has a cost."""
    train = {k: (q, t) for k, (q, t, _) in points.items() if t is not None}
    speed = {k: (q, s) for k, (q, _, s) in points.items() if s is not None and s > 0}
    if not train and not speed:
        return None
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = ((axes[0], train, "training wall time (s, log)"), (axes[1], speed, "scoring throughput (samples/s, log)"))
    for ax, found, label in panels:
        left = min([1.0, *(x for _, x in found.values() if x > 0)]) / 3  # where a row without training goes
        for name, (quality, x) in found.items():
            none = x <= 0
            style = {"facecolors": "none", "edgecolors": "C0"} if none else {"color": "C0"}
            ax.scatter([left if none else x], [quality], s=36, **style)
            ax.annotate(name + (" (no training)" if none else ""), (left if none else x, quality), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.margins(x=0.15, y=0.08)  # room for the labels
        ax.set(xlabel=label, ylabel=metric)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name
