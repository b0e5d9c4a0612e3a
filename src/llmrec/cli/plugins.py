"""Plugins: parts registered from outside the library (a protocol, a step kind, a baseline, a data set, ...).

A plugin is a module with a ``register()`` function that calls the registries' ``register_*``
functions (docs/tutorials/add-a-method.md). The CLI calls every plugin's ``register()`` before it
parses a command, so a registered protocol is a ``--protocol`` choice like a built-in one. Plugins
come from two places:

- installed packages naming an entry point in the group ``llmrec.plugins``
  (``[project.entry-points."llmrec.plugins"] my_plugin = "my_package.plugin:register"``);
- the environment: ``LLMREC_PLUGINS=module[:function],...`` (a module on ``PYTHONPATH``; the
  function defaults to ``register``).

From Python, import the plugin and call its ``register()`` yourself.

>>> plugin_specs("tests.toy_plugin, my.mod:setup")
[('tests.toy_plugin', 'register'), ('my.mod', 'setup')]
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from importlib.metadata import entry_points

from llmrec.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "ENV", "load_plugins", "plugin_specs"]

ENTRY_POINT_GROUP = "llmrec.plugins"
ENV = "LLMREC_PLUGINS"
_loaded: set[str] = set()


def plugin_specs(value: str) -> list[tuple[str, str]]:
    """``(module, function)`` of each comma-separated ``module[:function]`` of ``value``."""
    out = []
    for part in (p.strip() for p in value.split(",")):
        if part:
            module, _, function = part.partition(":")
            out.append((module, function or "register"))
    return out


def _call(where: str, get: Callable[[], Callable[[], object]]) -> None:
    try:
        register = get()
        register()
    except ConfigError:
        raise
    except Exception as exc:  # a broken plugin is one line naming it, not a traceback
        raise ConfigError(f"{where}: the plugin failed to load ({type(exc).__name__}: {exc})") from exc


def load_plugins(env: dict[str, str] | None = None) -> list[str]:
    """Register every plugin (entry points, then ``$LLMREC_PLUGINS``) once per process; the names loaded."""
    env = os.environ if env is None else env
    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry point {ep.name} ({ep.value})"
        if key not in _loaded:
            _call(f"{ENTRY_POINT_GROUP} {key}", ep.load)
            _loaded.add(key)
            loaded.append(ep.name)
    for module, function in plugin_specs(env.get(ENV, "")):
        key = f"{module}:{function}"
        if key not in _loaded:
            _call(f"{ENV}: {key}", lambda m=module, f=function: getattr(importlib.import_module(m), f))
            _loaded.add(key)
            loaded.append(key)
    return loaded
