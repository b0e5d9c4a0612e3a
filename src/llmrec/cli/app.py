"""The root group: one-line errors, exit codes, quiet third-party warnings, shared option helpers."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import click

from llmrec import __version__
from llmrec.errors import LlmrecError

EXIT_INTERRUPTED = 130


class RegistryChoice(click.Choice):
    """A choice among names read from a registry when the command line is parsed (not when the CLI is imported), so
    a part registered by a plugin or a test is accepted like a built-in one."""

    def __init__(self, names, case_sensitive: bool = True) -> None:
        self._names = names
        super().__init__([], case_sensitive=case_sensitive)

    @property
    def choices(self):  # type: ignore[override]
        return tuple(self._names())

    @choices.setter
    def choices(self, value) -> None:  # click sets it in __init__; the registry is the source
        pass


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """``--debug`` on the command line (this invocation only) or ``LLMREC_DEBUG=1``."""
    root = (ctx or click.get_current_context(silent=True))
    if root is not None and root.find_root().params.get("debug"):
        return True
    return os.environ.get("LLMREC_DEBUG", "").lower() in ("1", "true", "yes", "on")


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def quiet_third_party() -> None:
    """Silence warnings a user cannot act on (torchao kernels, deprecations deep in libraries)."""
    for name in ("torchao", "torch._dynamo", "torch.utils._pytree", "accelerate", "datasets", "peft", "trl",
                 "transformers.modeling_utils", "transformers.trainer", "transformers.configuration_utils",
                 "mlflow.store.db.utils", "alembic.runtime.migration"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.ERROR)
        logger.addFilter(_errors_only)  # survives torch resetting the levels of its loggers at import
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", module=r"(torchao|torch|transformers|peft|trl|accelerate|datasets)(\..*)?")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename or ""
        return f"{where}: {exc.strerror}" if where else exc.strerror
    return text.splitlines()[0] if text else type(exc).__name__


class Group(click.Group):
    """Turns errors into one clear line and an exit status, without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except (KeyboardInterrupt, LlmrecError, MemoryError, OSError, RuntimeError, ValueError, ImportError) as exc:
            if debug_enabled(ctx):
                raise
            if isinstance(exc, KeyboardInterrupt):
                click.echo("\ninterrupted", err=True)
                ctx.exit(EXIT_INTERRUPTED)
            if isinstance(exc, LlmrecError):
                message = str(exc)
            elif isinstance(exc, MemoryError):
                message = "out of memory; lower the batch size or the data size"
            else:
                message = f"{type(exc).__name__}: {_one_line(exc)} (LLMREC_DEBUG=1 shows the traceback)"
            raise click.ClickException(message) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="llmrec")
@click.option("--debug", is_flag=True, help="Show tracebacks (same as LLMREC_DEBUG=1).")
def main(debug: bool) -> None:
    """llmrec: causal language models as recommenders (TALLRec, ReLLa, LLM-TRSR).

    Start with `llmrec run configs/quickstart.yaml` (the README's main job: zero-shot vs LoRA vs
    classic models on MovieLens-100K), or `llmrec data prepare ml-100k --protocol tallrec`.
    """
    if not debug and not debug_enabled():
        quiet_third_party()
    from llmrec.cli.plugins import load_plugins

    load_plugins()  # before the command parses its options: a plugin's protocol is a --protocol choice
    if not main_process():  # under accelerate launch / torchrun one process speaks; errors still reach stderr
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process


def main_process() -> bool:
    """False in the processes of rank > 0 under a launcher (read from the environment: nothing initialized)."""
    return os.environ.get("RANK", "0") == "0"


def echo_err(message: str) -> None:
    if main_process():
        click.echo(message, err=True)


def config_command(model_cls, config_path, overrides, named: dict, print_config: bool, defaults: dict | None = None):
    """Resolve a config from ``defaults``, a YAML file, named options (shortcuts for fields) and --set overrides."""
    from llmrec.configfile import deep_merge, dump_config, load_config, read_yaml, set_dotted

    base = deep_merge(defaults or {}, read_yaml(config_path) if config_path else {})
    for key, value in named.items():
        if value is not None:  # named options are plain values, not YAML
            set_dotted(base, key.split("."), value)
    config = load_config(model_cls, overrides=overrides, base=base, source=config_path)
    if print_config:
        click.echo(dump_config(config), nl=False)
        return None
    return config


def require_extra(command: str, extra: str, modules: tuple[str, ...]) -> None:
    """One line naming the extra to install when a package ``command`` imports is missing (found without importing).

    >>> require_extra("llmrec x", "serve", ("json",))
    >>> require_extra("llmrec x", "serve", ("no_such_module_here",))
    Traceback (most recent call last):
    ...
    click.exceptions.ClickException: llmrec x needs no_such_module_here: pip install 'llmrec[serve]'
    """
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f"{command} needs {', '.join(missing)}: pip install 'llmrec[{extra}]'")


def engine_options(f):
    """--engine and --workers (where the work runs: here, or Ray Data workers)."""
    f = click.option("--workers", type=int, help="Ray workers (each loads the model once) [2].")(f)
    f = click.option("--engine", type=click.Choice(["local", "ray"]),
                     help="local: this process; ray: Ray Data workers (pip install 'llmrec[ray]') [local].")(f)
    return f


def _tracker_names():
    from llmrec.tracking import TRACKERS

    return list(TRACKERS)


def track_option(f):
    """--track NAME (repeatable): log the run to MLflow / TensorBoard (``tracking.<name>: true``)."""
    return click.option("--track", "track", multiple=True, type=RegistryChoice(_tracker_names),
                        help="Also log the run to this tracker: mlflow, tensorboard (repeatable; docs/tracking.md; "
                        "pip install 'llmrec[tracking]').")(f)


def tracking_fields(track) -> dict:
    """The config fields ``--track`` sets (named options of :func:`config_command`).

    >>> tracking_fields(("mlflow",))
    {'tracking.mlflow': True}
    """
    return {f"tracking.{name}": True for name in track or ()}


def config_options(f):
    """--config, --set and --print-config."""
    f = click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")(f)
    f = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")(f)
    f = click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")(f)
    return f


def parse_seeds(seeds: str) -> list[int]:
    """The seeds of a ``--seeds 0,1,2`` option (distinct integers; a ``BadParameter`` naming the option otherwise).

    >>> parse_seeds("0, 1,2")
    [0, 1, 2]
    """
    try:
        out = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"must be comma-separated integers, got {seeds!r}", param_hint="--seeds") from None
    if not out:
        raise click.BadParameter("give at least one seed", param_hint="--seeds")
    if len(set(out)) != len(out):
        raise click.BadParameter(f"repeated seed in {seeds!r}", param_hint="--seeds")
    return out
