"""Runs under a launcher: the shipped accelerate configs, 2-process CPU (gloo) training and evaluation, and
the scorer on a model whose parameters are sharded across processes (FSDP2).

The launched tests start real processes with ``torchrun`` (``python -m torch.distributed.run``) on a tiny
model; each takes 15-30 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.distributed import World, shard, unshard, world

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "accelerate"


# ------------------------------------------------------------------ rank helpers, one process
@pytest.mark.parametrize("n", [0, 1, 5, 6, 7])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_shards_cover_every_item_once_in_order(n, size):
    items = list(range(n))
    parts = [shard(items, World(rank=r, size=size)) for r in range(size)]
    assert unshard(parts) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_llmrec_run_under_a_launcher_stops_with_one_line(monkeypatch, tmp_path):
    """`accelerate launch -m llmrec.cli run FILE` would run every step on every rank (and wait on the other ranks'
    locks): it stops before anything runs, naming the ways that work."""
    from click.testing import CliRunner

    from llmrec.cli.app import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(REPO / "configs/quickstart.yaml"), "--out", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "llmrec run runs one process" in result.output and "--only ROW" in result.output
    assert not out.exists()


def test_one_process_is_rank_zero_of_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world() == World(0, 1, 0) and world().main


# ------------------------------------------------------------------ shipped launcher configs
def _launcher_env(config_file: Path) -> dict[str, str]:
    """The environment ``accelerate launch --config_file FILE`` gives the training processes (nothing started)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(config_file), "-m", "llmrec.cli", "train"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config.keys())
        return prepare_deepspeed_cmd_env(args)[1]
    return prepare_multi_gpu_env(args)


@pytest.mark.parametrize("name, expected", [
    ("ddp", {}),
    ("deepspeed-zero2", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": "ds-zero2.json"}),
    ("deepspeed-zero3", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO3_INIT": "true",
                         "ACCELERATE_DEEPSPEED_CONFIG_FILE": "ds-zero3.json"}),
    ("fsdp", {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT",
              "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP"}),
])
def test_shipped_accelerate_configs_load_and_set_the_launch_environment(name, expected):
    from accelerate.commands.config.config_args import load_config_from_file

    path = CONFIGS / f"{name}.yaml"
    config = load_config_from_file(str(path))  # unknown keys fail here
    assert config.num_machines == 1 and config.num_processes >= 2 and not config.use_cpu
    env = _launcher_env(path)
    assert env["ACCELERATE_MIXED_PRECISION"] == "no"  # precision is the train config's optim.mixed_precision
    for key, value in expected.items():
        assert env[key].endswith(value), (key, env[key])
    if "ACCELERATE_DEEPSPEED_CONFIG_FILE" in env:
        ds = json.loads((REPO / env["ACCELERATE_DEEPSPEED_CONFIG_FILE"]).read_text())
        assert ds["zero_optimization"]["stage"] == int(name[-1])
        # batch sizes, accumulation, clipping and precision follow the train config
        for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
            assert ds[key] == "auto"
        assert ds["bf16"]["enabled"] == ds["fp16"]["enabled"] == "auto"


def test_every_shipped_launcher_config_is_documented():
    doc = (REPO / "docs" / "distributed.md").read_text()
    for path in CONFIGS.glob("*.yaml"):
        assert f"configs/accelerate/{path.name}" in doc
        assert yaml.safe_load(path.read_text())["distributed_type"]


# ------------------------------------------------------------------ launched: 2 CPU processes, gloo
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Launch ``args`` on 2 CPU processes; one retry when a rank died of a native abort (SIGABRT in gloo, seen
    once in CI as "terminate called without an active exception"), never when Python code failed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("WORLD_SIZE", None)
    for attempt in (1, 2):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), *args]
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        native_abort = "(SIGABRT)" in done.stderr and "exitcode  : 1 " not in done.stderr
        if done.returncode == 0 or not native_abort or attempt == 2:
            break
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def launch_inputs(tmp_path, tiny_ml1m, tiny_model_folder):
    cfg = PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(tiny_ml1m), out=str(tmp_path / "tallrec"),
                        tallrec={"history_len": 5, "max_samples": 300})
    return prepare(cfg, log=lambda m: None)[1], tiny_model_folder


def test_two_process_cpu_ddp_training_writes_one_complete_run(tmp_path, launch_inputs):
    data, model = launch_inputs
    run = tmp_path / "run-ddp"
    done = _torchrun(["-m", "llmrec.cli", "train", "-d", str(data), "--shots", "32", "-m", str(model), "--epochs", "2",
                      "--device", "cpu", "--run-dir", str(run), "--set", "selection.limit=20",
                      "--set", "test.limit=15", "--set", "optim.batch_size=4"], tmp_path)
    result = json.loads((run / "metrics.json").read_text())
    # 32 samples, 4 per process and step, 2 processes: 4 steps per epoch (one process would take 8)
    assert result["train"]["steps"] == 8 and result["run"]["processes"] == 2
    selection = json.loads((run / "selection.json").read_text())
    assert [e["step"] for e in selection["evaluations"]] == [0, 4, 8]  # validated once per point, not per rank
    assert (run / "adapter" / "adapter_config.json").exists() and (run / "best-adapter").is_dir()
    assert len(pd.read_parquet(run / "test" / "predictions.parquet")) == 15
    assert set(result["test"]) >= {"auc", "logloss", "acc"}
    assert done.stdout.count("run folder:") == 1  # one process speaks
    assert not list(tmp_path.glob("**/*.tmp*"))


def test_evaluation_spread_over_two_processes_equals_one_process(tmp_path, launch_inputs):
    from llmrec.evaluate import EvaluateConfig, evaluate

    data, model = launch_inputs
    cfg = EvaluateConfig(data=str(data), limit=40, model={"name": str(model), "device": "cpu"},
                         run_dir=str(tmp_path / "one"))
    evaluate(cfg, log=lambda m: None, progress=False)
    _torchrun(["-m", "llmrec.cli", "evaluate", "-d", str(data), "-m", str(model), "--device", "cpu", "--limit", "40",
               "--run-dir", str(tmp_path / "two"), "--set", "checkpoint_every=4"], tmp_path)
    one = pd.read_parquet(tmp_path / "one" / "predictions.parquet")
    two = pd.read_parquet(tmp_path / "two" / "predictions.parquet")
    assert one["sample_id"].tolist() == two["sample_id"].tolist()
    assert (one["score"] - two["score"]).abs().max() < 1e-6
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["run"]["processes"] == 2


def test_scorer_on_parameters_sharded_across_two_processes(tmp_path):
    out = tmp_path / "fsdp.json"
    _torchrun([str(REPO / "tests" / "launched" / "fsdp_scoring.py"), str(out)], tmp_path)
    got = json.loads(out.read_text())
    assert got["sharding"] == "fsdp" and got["head"] == "full"  # the decoder alone would see shards
    assert got["local_parameters"] < got["all_parameters"]  # really split across the two processes
    assert max(abs(a - b) for a, b in zip(got["reference"], got["sharded"])) < 1e-5


def test_forced_mixed_precision_without_a_gpu_fails_before_a_run_folder_exists(tmp_path, launch_inputs):
    from llmrec.errors import ConfigError
    from llmrec.train import TrainConfig, train

    data, model = launch_inputs
    cfg = TrainConfig(data=str(data), train_samples=8, model={"name": str(model), "device": "cpu"},
                      optim={"mixed_precision": "fp16"}, run_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="optim.mixed_precision: fp16 needs a CUDA GPU"):
        train(cfg, log=lambda m: None, progress=False)
    assert not (tmp_path / "run").exists()
