"""Shared by the CTR and the sequential baseline tests: configs and the kill-and-resume check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from llmrec.baselines.config import BaselineConfig
from llmrec.baselines.run import run_baseline

QUIET: dict[str, Any] = dict(progress=False, log=lambda m: None)


def baseline_config(model: str, data: str, run_dir, params: dict, train: dict, **extra) -> BaselineConfig:
    fields = {"model": model, "data": data, "run_dir": str(run_dir), "seed": 0, "params": params, "train": train}
    fields.update(extra)
    return BaselineConfig.model_validate(fields)


def check_resume_after_kill(make_config, tmp_path, monkeypatch, kill_at_step: int) -> list[str]:
    """Run once whole; run again killed at Adam step ``kill_at_step`` (between checkpoints), then
    resume: the metrics and predictions must be identical. Returns the resumed run's log."""
    _, whole = run_baseline(make_config(tmp_path / "whole"), **QUIET)
    calls = {"n": 0}
    real = torch.optim.Adam.step

    def dying_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == kill_at_step:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run_baseline(make_config(tmp_path / "cut"), **QUIET)
    monkeypatch.setattr(torch.optim.Adam, "step", real)
    assert (tmp_path / "cut" / "model" / "checkpoint.pt").exists()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    logs: list[str] = []
    _, resumed = run_baseline(make_config(tmp_path / "cut"), progress=False, log=logs.append)
    assert any("resuming from step" in m for m in logs), logs
    assert resumed["metrics"] == whole["metrics"]
    assert np.array_equal(pd.read_parquet(tmp_path / "whole" / "predictions.parquet")["score"],
                          pd.read_parquet(tmp_path / "cut" / "predictions.parquet")["score"])
    return logs
