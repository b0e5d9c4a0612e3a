"""The ``llmrec`` command line: a thin layer over the library API.

Every command that runs work takes ``--config FILE.yaml`` and repeated ``--set key=value``
overrides (dotted paths into the config, YAML values), so any field can be changed from
the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from llmrec import __version__
from llmrec.errors import LlmrecError


class _Group(click.Group):
    """Turns library errors into one clear line and exit status 1, without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LlmrecError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="llmrec")
def main() -> None:
    """llmrec: causal language models as recommenders (TALLRec, ReLLa, LLM-TRSR).

    Start with `llmrec data prepare ml-1m --protocol rella`.
    """


@main.group(cls=_Group)
def data() -> None:
    """Load data sets into the llmrec schema and build protocol splits."""


def _source_options(f):
    f = click.option("--download", is_flag=True, help="Fetch the official archive if not found locally.")(f)
    f = click.option("--data-root", type=click.Path(file_okay=False), help="Folder holding data sets.")(f)
    f = click.option("--path", "path", type=click.Path(), help="Archive or folder of this data set.")(f)
    return f


@data.command("list")
def data_list() -> None:
    """List the known data sets and protocols."""
    from llmrec.data.protocols import PROTOCOLS
    from llmrec.data.registry import DATASETS

    click.echo("data sets:")
    for spec in DATASETS.values():
        alias = f" (alias: {', '.join(spec.aliases)})" if spec.aliases else ""
        click.echo(f"  {spec.name:<16} {spec.description}{alias}")
    click.echo("protocols:")
    for p in PROTOCOLS.values():
        click.echo(f"  {p.name:<16} {p.summary}")


@data.command("prepare")
@click.argument("dataset", required=False)
@click.option("--protocol", "-p", type=click.Choice(["tallrec", "rella", "trsr"]), help="Protocol to apply.")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field, e.g. rella.max_history=30.")
@_source_options
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output folder [prepared/<dataset>-<protocol>].")
@click.option("--seed", type=int, help="Seed of the protocol (same as --set <protocol>.seed=N).")
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")
def data_prepare(dataset, protocol, config_path, overrides, path, data_root, download, out, seed, print_config) -> None:
    """Build the train/valid/test splits of PROTOCOL on DATASET and print their statistics.

    \b
    Examples:
      llmrec data prepare ml-1m --protocol rella
      llmrec data prepare ml-100k -p tallrec --set tallrec.few_shot=[16,64]
      llmrec data prepare amazon-games -p trsr --path ../shared/data/amazon-games
    """
    from llmrec.config import read_yaml
    from llmrec.data.prepare import PrepareConfig, prepare
    from llmrec.data.stats import format_stats

    named = {"dataset": dataset, "protocol": protocol, "path": path, "data_root": data_root, "out": out,
             "download": True if download else None}
    if seed is not None:
        proto = protocol or (read_yaml(config_path).get("protocol") if config_path else None)
        if proto is None:
            raise click.UsageError("--seed needs --protocol")
        named[f"{proto}.seed"] = seed
    if not (dataset and protocol) and not config_path:
        raise click.UsageError("give DATASET and --protocol (or a --config file that sets them)")
    config = _config_command(PrepareConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    prepared, out_dir, timings = prepare(config, log=lambda m: click.echo(m, err=True))
    click.echo(format_stats(prepared.stats()))
    click.echo(f"\nsplits written to {out_dir}/ ({', '.join(f'{k} {v:.1f}s' for k, v in timings.items())})")


@data.command("stats")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def data_stats(directory) -> None:
    """Print the statistics table of a prepared folder."""
    from llmrec.data.protocols import PreparedData
    from llmrec.data.stats import format_stats

    click.echo(format_stats(PreparedData.load(directory).stats()))


@data.command("load")
@click.argument("dataset")
@_source_options
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output folder [prepared/<dataset>].")
def data_load(dataset, path, data_root, download, out) -> None:
    """Convert DATASET into the llmrec schema (interactions/items/users Parquet)."""
    from llmrec.data.registry import get_spec, load_dataset

    loaded = load_dataset(dataset, path, data_root, download)
    target = Path(out) if out else Path("prepared") / get_spec(dataset).name
    loaded.save(target)
    s = loaded.summary()
    click.echo(
        f"{s['name']}: {s['interactions']:,} interactions, {s['users']:,} users, {s['items']:,} items "
        f"(timestamps: {s['timestamp_kind']}) -> {target}/"
    )


@data.command("download")
@click.argument("dataset")
def data_download(dataset) -> None:
    """Download DATASET's official archive into the cache and verify its checksum."""
    from llmrec.data.download import download_archive
    from llmrec.data.registry import get_spec

    spec = get_spec(dataset)
    if not spec.url:
        raise click.ClickException(f"{spec.name} has no official download; get it by hand and pass --path")
    click.echo(str(download_archive(spec.url, md5=spec.md5)))


def _config_command(model_cls, config_path, overrides, named: dict, print_config: bool):
    """Resolve a config from a YAML file, named options (shortcuts for fields) and --set overrides."""
    from llmrec.config import dump_config, load_config, read_yaml, set_dotted

    base = read_yaml(config_path) if config_path else {}
    for key, value in named.items():
        if value is not None:  # named options are plain values, not YAML
            set_dotted(base, key.split("."), value)
    config = load_config(model_cls, overrides=overrides, base=base)
    if print_config:
        click.echo(dump_config(config), nl=False)
        return None
    return config


@main.command("evaluate")
@click.option("--data", "-d", help="Prepared folder (llmrec data prepare).")
@click.option("--split", help="Split to score [test].")
@click.option("--model", "-m", "model_name", help="'default', a hub id, a folder or a .gguf file.")
@click.option("--template", "-t", help="Template name or file [per protocol and domain].")
@click.option("--limit", type=int, help="Score a seeded random subset of N samples.")
@click.option("--batch-size", type=int, help="Prompts per forward pass [8].")
@click.option("--device", help="auto, cpu, cuda, mps [auto].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder; an interrupted run there resumes.")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")
def evaluate_cmd(data, split, model_name, template, limit, batch_size, device, run_dir, config_path, overrides, print_config):
    """Zero-shot scoring of a prepared split: predictions, metrics and plots in a run folder.

    \b
    Examples:
      llmrec evaluate --data prepared/ml-100k-tallrec --limit 1000
      llmrec evaluate -d prepared/ml-1m-rella --set history_k=30 --set scoring.batch_size=4
    """
    import json

    from llmrec.evaluate import EvaluateConfig, evaluate

    named = {"data": data, "split": split, "model.name": model_name, "template": template, "limit": limit,
             "scoring.batch_size": batch_size, "model.device": device, "run_dir": run_dir}
    config = _config_command(EvaluateConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    path, result = evaluate(config, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(result["metrics"], indent=2))
    click.echo(f"run folder: {path}/")


@main.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
def compare_cmd(runs) -> None:
    """Metrics of several run folders side by side."""
    from llmrec.runs import load_metrics

    results = [(r, load_metrics(r)) for r in runs]
    keys = []
    for _, res in results:
        keys += [k for k, v in res["metrics"].items() if isinstance(v, (int, float)) and k not in keys]
    header = ["run", "data", "prompts", *keys]
    rows = [header]
    for r, res in results:
        m = res["metrics"]
        rows.append([Path(r).name, f"{res['dataset']}/{res['protocol']}/{res['split']}", str(res["run"]["prompts"]),
                     *[f"{m[k]:.4f}" if isinstance(m.get(k), float) else str(m.get(k, "-")) for k in keys]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)))


@main.group(cls=_Group)
def bench() -> None:
    """Benchmarks; record their figures in BENCHMARKS.md with the machine and date."""


@bench.command("data")
@click.option("--dataset", default="ml-1m", show_default=True)
@click.option("--protocol", default="rella", show_default=True, type=click.Choice(["tallrec", "rella", "trsr"]))
@_source_options
@click.option("--repeats", default=1, show_default=True, help="Runs; the fastest is reported.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Also write the JSON result here.")
def bench_data(dataset, protocol, path, data_root, download, repeats, output) -> None:
    """Time and peak memory of `data prepare`, and the speed of the metrics."""
    import json

    from llmrec.bench.data import run
    from llmrec.io import write_json

    if download:
        from llmrec.data.registry import resolve_source

        path = str(resolve_source(dataset, path, data_root, download=True))
    result = run(dataset, protocol, data_root, path, repeats)
    click.echo(json.dumps(result, indent=2))
    if output:
        write_json(output, result)


@bench.command("scoring")
@click.option("--data", "-d", default="prepared/ml-1m-rella", show_default=True, help="Prepared CTR folder for the prompts.")
@click.option("--model", "-m", "model_name", default="default", show_default=True)
@click.option("--prompts", "n_prompts", default=24, show_default=True, help="Prompts per method.")
@click.option("--history-k", default=12, show_default=True, help="History items per prompt (about 350 tokens at 12 on ML-1M).")
@click.option("--batch-size", "batch_sizes", multiple=True, type=int, default=(1, 8), show_default=True)
@click.option("--rank-users", default=2, show_default=True, help="Users x 21 candidates for the ranking case.")
@click.option("--int8", is_flag=True, help="Also measure int8 dynamic quantization and its AUC change.")
@click.option("--llamacpp", is_flag=True, help="Also measure the llama.cpp backend (GGUF models) and its AUC change.")
@click.option("--auc-prompts", default=200, show_default=True, help="Labelled prompts for the AUC comparisons.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Also write the JSON result here.")
def bench_scoring(data, model_name, n_prompts, history_k, batch_sizes, rank_users, int8, llamacpp, auc_prompts, output) -> None:
    """Scoring speed: research-code way, generate loop, this engine, prefix reuse, int8, llama.cpp."""
    import json

    from llmrec.bench.scoring import run
    from llmrec.io import write_json

    result = run(data, model_name, n_prompts, history_k, tuple(batch_sizes), rank_users, int8, auc_prompts, llamacpp,
                 log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(result, indent=2))
    if output:
        write_json(output, result)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
