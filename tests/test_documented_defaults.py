"""A command line as the README and the docs show it starts from the settings of the shipped config it stands
for: every registered model and training recipe carries its tuned defaults, so ``llmrec baseline sasrec -d ...``
trains what ``configs/baselines/sasrec.yaml`` trains, not a generic 10 epochs.

Each ``llmrec baseline NAME ...`` / ``llmrec train --data ... --shots N ...`` line of README.md, docs/*.md and the
commands' own ``--help`` examples is resolved with ``--print-config`` (the CLI's own resolution, nothing runs) and
compared with the shipped file resolved the same way (``-c FILE --print-config``). Only what the line sets
itself (its data, seed, run folder, shots, ``--set`` keys) and the seed may differ.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from llmrec.cli import main
from llmrec.data.kinds import KINDS

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
           REPO / "src/llmrec/cli/baseline.py", REPO / "src/llmrec/cli/train.py"]

# the shipped config a `llmrec train --data D --shots N` line stands for: configs/tallrec/<domain>-<N>.yaml
TRAIN_DOMAINS = {"prepared/ml-100k-tallrec": "movie", "prepared/bookcrossing-tallrec": "book",
                 "prepared/tallrec-movie-release": "movie"}  # TALLRec's released movie split (docs/training.md)
# the sample kind of each data folder the lines use (a null selection metric means the kind's default)
KIND_OF = {"prepared/amazon-games-trsr": "ranking", "prepared/mind-trsr": "ranking"}

# options that name a field; the field then differs from the shipped file on purpose
NAMED = {"baseline": {"--data": "data", "-d": "data", "--shots": "train_samples", "--seed": "seed",
                      "--epochs": "train.epochs", "--run-dir": "run_dir"},
         "train": {"--data": "data", "-d": "data", "--shots": "train_samples", "--seed": "seed",
                   "--seeds": "seed", "--model": "model.name", "-m": "model.name", "--epochs": "optim.epochs",
                   "--lr": "optim.learning_rate", "--device": "model.device", "--run-dir": "run_dir"}}
# a seed is a draw, not a tuned setting (the shipped files fix 0, the CLI 42); tracking (--track) only logs a run
ALWAYS_FREE = {"seed", "run_dir", "tracking"}


def command_lines() -> list[tuple[str, str]]:
    """(where, line) of every documented ``llmrec baseline NAME`` / ``llmrec train`` line that does not read a
    config file (``-c``) and names no placeholder (``DIR``, ``NAME``)."""
    found = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8").replace("\\\n", " ")
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            match = re.match(r"^(?:\$ )?(llmrec (?:baseline|train)\b.*)$", line)
            if not match:
                continue
            words = shlex.split(match.group(1), comments=True)
            if {"-c", "--config", "--list", "-h", "--help"} & set(words) or any(re.fullmatch(r"[A-Z]+", w)
                                                                                for w in words[2:]):
                continue
            found.append((f"{path.relative_to(REPO)}:{number}", " ".join(words)))
    return found


LINES = command_lines()


def test_the_docs_have_such_lines():
    commands = {line.split()[1] for _, line in LINES}
    assert commands == {"baseline", "train"}, LINES
    assert len(LINES) >= 6


def resolved(args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(main, [*args, "--print-config"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.output)


def free_fields(command: str, words: list[str]) -> set[str]:
    """The dotted fields the line sets itself."""
    out = set(ALWAYS_FREE)
    for i, word in enumerate(words):
        name, _, value = word.partition("=")
        if name in NAMED[command]:
            out.add(NAMED[command][name])
        if word == "--set":
            out.add(words[i + 1].partition("=")[0])
        elif name == "--set" and value:
            out.add(value.partition("=")[0])
    return out


def drop(config: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        config = config.get(key) or {}
    config.pop(leaf, None)


def option(words: list[str], *names: str) -> str | None:
    for i, word in enumerate(words):
        if word in names and i + 1 < len(words):
            return words[i + 1]
        for name in names:
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
    return None


def shipped_file(command: str, words: list[str]) -> Path:
    if command == "baseline":
        path = REPO / "configs" / "baselines" / f"{words[2]}.yaml"
        assert path.is_file(), f"no shipped config configs/baselines/{words[2]}.yaml for {' '.join(words)}"
        return path
    data, shots = option(words, "--data", "-d"), option(words, "--shots")
    assert data in TRAIN_DOMAINS and shots, (
        f"{' '.join(words)}: which shipped config does this line stand for? add its data folder to TRAIN_DOMAINS "
        "(and give --shots), or point the line at a config with -c")
    return REPO / "configs" / "tallrec" / f"{TRAIN_DOMAINS[data]}-{shots}.yaml"


def with_default_metric(config: dict[str, Any], section: str, kind: str) -> None:
    part = config.get(section) or {}
    if part.get("metric") is None:
        part["metric"] = KINDS[kind].default_metric


@pytest.mark.parametrize("where,line", LINES, ids=[w for w, _ in LINES])
def test_a_documented_line_starts_from_its_shipped_config(where, line):
    words = shlex.split(line)
    command = words[1]
    shipped = shipped_file(command, words)
    from_line, from_file = resolved(words[1:]), resolved([command, "-c", str(shipped)])
    for dotted in free_fields(command, words):
        drop(from_line, dotted)
        drop(from_file, dotted)
    section = "valid" if command == "baseline" else "selection"
    kind = KIND_OF.get(str(from_file.get("data")), "ctr")
    for config in (from_line, from_file):
        with_default_metric(config, section, kind)
    assert from_line == from_file, f"{where}: `{line}` resolves to other settings than {shipped.relative_to(REPO)}"


def test_every_trainable_baseline_with_a_shipped_config_carries_its_training():
    """The registry's defaults are the shipped configs' settings: a config states only its data and seed."""
    from llmrec.baselines.config import BaselineConfig
    from llmrec.baselines.models import BASELINES
    from llmrec.configfile import load_config

    checked = 0
    for path in sorted((REPO / "configs" / "baselines").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if "rows" in raw or path.stem not in BASELINES:
            continue
        shipped = load_config(BaselineConfig, path)
        plain = BaselineConfig(model=raw["model"], data=raw["data"], seed=shipped.seed,
                               train_samples=shipped.train_samples)
        if path.stem == raw["model"]:  # NAME.yaml: the model's own config
            assert plain == shipped, path.name
            assert not raw.get("train") and not raw.get("params"), f"{path.name} restates the model's defaults"
            checked += 1
    assert checked >= 12


def test_a_config_that_sets_a_field_keeps_it():
    from llmrec.baselines.config import BaselineConfig, BaselineTrainSettings

    dumped = BaselineConfig(model="sasrec", data="d", train={"epochs": 2}).model_dump()
    assert dumped["train"]["epochs"] == 2 and dumped["train"]["batch_size"] == 256
    # a settings object: only the fields it was given count as set
    cfg = BaselineConfig(model="sasrec", data="d", train=BaselineTrainSettings(patience=9))
    assert (cfg.train.epochs, cfg.train.patience) == (30, 9)
    # a resolved config reloads to itself (resume compares them), and a model without tuned training keeps the
    # generic defaults
    assert BaselineConfig.model_validate(cfg.model_dump()) == cfg
    assert BaselineConfig(model="din", data="d").train == BaselineTrainSettings()
    # `--set model=...` after a file: the named model's defaults
    assert BaselineConfig(model="logreg", data="d").train.learning_rate == 1e-2


def test_an_unknown_model_is_one_line_at_the_check(tmp_path):
    from llmrec.baselines.config import BaselineConfig
    from llmrec.errors import ConfigError

    cfg = BaselineConfig(model="nosuch", data=str(tmp_path))  # the config itself loads
    from llmrec.baselines.run import check_baseline

    with pytest.raises(ConfigError, match="unknown baseline 'nosuch'"):
        check_baseline(cfg)


@pytest.mark.parametrize("shots", [16, 64, 256])
def test_tallrec_shots_start_from_the_shipped_schedule(shots):
    """``llmrec train --data ... --shots N`` trains what configs/tallrec/movie-N.yaml trains; the 16-shot file
    also validates every 4 steps instead of every epoch (fewer validation passes: cost, not quality)."""
    from llmrec.configfile import load_config
    from llmrec.train.config import TrainConfig

    shipped = load_config(TrainConfig, REPO / "configs" / "tallrec" / f"movie-{shots}.yaml").model_dump()
    plain = TrainConfig(data="prepared/ml-100k-tallrec", train_samples=shots, seed=0).model_dump()
    if shipped["selection"]["metric"] == "auc" and plain["selection"]["metric"] is None:
        plain["selection"]["metric"] = "auc"
    shipped["selection"]["every_steps"] = plain["selection"]["every_steps"]
    assert plain == shipped


def test_every_registered_training_default_is_a_valid_setting():
    from llmrec.baselines.config import BaselineConfig, BaselineTrainSettings
    from llmrec.baselines.models import BASELINES

    for name, spec in BASELINES.items():
        BaselineTrainSettings(**spec.train)  # a known field, a valid value
        assert spec.trainable or not spec.train, f"{name}: training defaults for a model that does not train"
        resolved = BaselineConfig(model=name, data="d").train
        assert all(getattr(resolved, k) == v for k, v in spec.train.items()), name
