"""Config files: YAML read into the typed configs (pydantic models), any field overridable from the CLI.

The config classes live beside what they configure (``PrepareConfig`` in :mod:`llmrec.data.prepare`, ...);
this module reads YAML files, applies overrides and validates. Overrides use dotted paths and YAML values,
e.g. ``rella.max_history=30`` or ``tallrec.few_shot=[16,64]``.

>>> from llmrec.data.prepare import PrepareConfig
>>> cfg = load_config(PrepareConfig, overrides=["dataset=ml-1m", "protocol=rella", "rella.max_history=30"])
>>> cfg.rella.max_history
30
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from llmrec.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (["a", "b"], parsed YAML value); ``@step`` stays a string.

    >>> parse_override("data=@hier"), parse_override("optim.epochs=2")
    ((['data'], '@hier'), (['optim', 'epochs'], 2))
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.subkey=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    if raw.strip().startswith("@"):  # a reference to an experiment step's output ('@' cannot start YAML)
        return key.split("."), raw.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({yaml_problem(exc)})") from None
    return key.split("."), value


def set_dotted(data: dict[str, Any], path: list[str], value: Any, what: str = "") -> None:
    """Set ``data[path[0]][path[1]]... = value`` in place, creating sections."""
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"override {what or '.'.join(path)!r}: {part!r} is not a section")
        node = child
    node[path[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``data`` with each dotted override set (nested dicts created)."""
    out = yaml.safe_load(yaml.safe_dump(data)) if data else {}
    for text in overrides:
        path, value = parse_override(text)
        set_dotted(out, path, value, text)
    return out


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: what is wrong and where (line, column).

    >>> try:
    ...     yaml.safe_load("a: {b: 1\\nc: 2")
    ... except yaml.YAMLError as exc:
    ...     print(yaml_problem(exc))
    expected ',' or '}', but got ':' at line 2, column 2 (while parsing a flow mapping that starts at line 1)
    """
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem:
        return " ".join(str(exc).split())
    text = problem + (f" at line {mark.line + 1}, column {mark.column + 1}" if mark else "")
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        text += f" ({context}" + (f" that starts at line {start.line + 1}" if start else "") + ")"
    return text


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(
    model: type[M],
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: dict[str, Any] | None = None,
    source: str | Path | None = None,
) -> M:
    """Build ``model`` from ``base`` values, then a YAML file, then CLI overrides (last wins); ``source``
    names the file ``base`` was read from in error messages."""
    data = dict(base or {})
    if path is not None:
        data = deep_merge(data, read_yaml(path))
    data = apply_overrides(data, overrides)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = f"{path or source}: " if path or source else ""
        lines = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{where}invalid config: " + "; ".join(lines)) from exc


def dump_config(config: BaseModel) -> str:
    """YAML text of a config, reloadable with :func:`load_config`."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``b`` over ``a``, nested mappings merged key by key.

    >>> deep_merge({"model": {"name": "x", "dtype": "auto"}}, {"model": {"dtype": "float32"}})
    {'model': {'name': 'x', 'dtype': 'float32'}}
    """
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def fields_given(section: Any, model: type[BaseModel]) -> dict[str, Any] | None:
    """What a nested config section sets, before validation: ``{}`` for None, the fields a ``model`` instance was
    built with, a mapping as it is; None for anything else (the model's validation names it).

    >>> class Optim(BaseModel):
    ...     epochs: int = 3
    ...     lr: float = 1e-3
    >>> fields_given(None, Optim), fields_given(Optim(epochs=5), Optim), fields_given({"lr": 0.1}, Optim)
    ({}, {'epochs': 5}, {'lr': 0.1})
    >>> fields_given(7, Optim) is None
    True
    """
    if section is None:
        return {}
    if isinstance(section, model):
        return {name: getattr(section, name) for name in section.model_fields_set}
    return section if isinstance(section, dict) else None
