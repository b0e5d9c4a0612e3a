"""Every config file shipped in configs/ must load into its typed config."""

from pathlib import Path

import pytest

from llmrec.config import load_config
from llmrec.data.prepare import PrepareConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "data").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_data_config_loads(path):
    cfg = load_config(PrepareConfig, path)
    assert cfg.protocol in path.name


def test_configs_exist():
    assert len(CONFIGS) >= 4


TALLREC = sorted((Path(__file__).resolve().parents[1] / "configs" / "tallrec").glob("*-*.yaml"))


@pytest.mark.parametrize("path", TALLREC, ids=lambda p: p.name)
def test_tallrec_configs_load(path):
    from llmrec.evaluate import EvaluateConfig
    from llmrec.train import TrainConfig

    if "zeroshot" in path.name:
        cfg = load_config(EvaluateConfig, path)
        assert cfg.adapter is None
    else:
        cfg = load_config(TrainConfig, path)
        assert cfg.train_samples == int(path.stem.split("-")[1])
        assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (8, 16, 0.05)
    assert ("ml-100k" in cfg.data) == path.name.startswith("movie")
