"""Run directories: config, predictions, metrics and plots of one run, resumable.

Layout of ``runs/<name>/``::

    config.yaml              the resolved config (reloadable with --config)
    predictions.partial.jsonl  scored so far (appended batch by batch; removed when done)
    predictions.parquet      all predictions (written at the end, atomically)
    metrics.json             metrics and run facts (timings, model, machine)
    plots/*.png              ROC curve, score histograms / rank histogram

A run is *finished* when ``metrics.json`` exists. An interrupted run restarts where it
stopped: the partial file is read back (a torn last line is ignored) and only the missing
samples are scored.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import yaml

from llmrec.errors import ConfigError, LlmrecError
from llmrec.io import write_json, write_text


class RunDir:
    """One run's folder (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def default_name(*parts: str) -> str:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return "-".join([stamp, *[p for p in parts if p]])

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def partial_path(self) -> Path:
        return self.path / "predictions.partial.jsonl"

    @property
    def finished(self) -> bool:
        return (self.path / "metrics.json").exists()

    def start(self, config: dict[str, Any], identity: dict[str, Any], resume: bool = True) -> None:
        """Create the folder, or check that an existing one belongs to the same run."""
        if self.config_path.exists():
            old = yaml.safe_load(self.config_path.read_text()) or {}
            same = _identity(old) == identity
            if not same:
                raise ConfigError(
                    f"{self.path} holds a run with a different config; pass a new --run-dir (or delete the folder)"
                )
            if not resume:
                self.partial_path.unlink(missing_ok=True)
            return
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.config_path, yaml.safe_dump({**config, "_identity": identity}, sort_keys=False))

    def done(self) -> dict[str, dict[str, Any]]:
        """Predictions already in the partial file, keyed by ``key``; a torn last line is dropped."""
        if not self.partial_path.exists():
            return {}
        raw = self.partial_path.read_bytes()
        complete = raw.rfind(b"\n") + 1
        if complete < len(raw):  # interrupted while writing the last line: cut it off
            with open(self.partial_path, "r+b") as f:
                f.truncate(complete)
        out = {}
        with open(self.partial_path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LlmrecError(f"{self.partial_path}: corrupt line ({exc}); delete the file to start over") from exc
                out[rec["key"]] = rec
        return out

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append scored records durably (one JSON line each)."""
        with open(self.partial_path, "a", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finish(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / "metrics.json", metrics)
        self.partial_path.unlink(missing_ok=True)


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("_identity", {})


def load_metrics(path: str | Path) -> dict[str, Any]:
    p = Path(path) / "metrics.json"
    if not p.exists():
        raise LlmrecError(f"{path}: no metrics.json (unfinished run, or not a run folder)")
    return json.loads(p.read_text())
