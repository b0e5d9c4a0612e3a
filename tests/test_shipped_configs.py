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
