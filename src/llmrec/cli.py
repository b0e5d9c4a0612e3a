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


@data.command("import-tallrec")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", "-o", type=click.Path(file_okay=False), required=True, help="Prepared folder to write.")
@click.option("--name", default="tallrec-release", show_default=True, help="Data set name stored in meta.json.")
def data_import_tallrec(sources, out, name) -> None:
    """Import TALLRec's released splits (JSON lists of {instruction, input, output}).

    SOURCES are files (the split is the file name: train.json -> train), SPLIT=FILE pairs,
    or a folder holding train.json / valid.json / test.json.

    \b
    Examples:
      llmrec data import-tallrec TALLRec/data/movie --out prepared/tallrec-movie-release
      llmrec data import-tallrec train=movie_train.json test=movie_test.json -o prepared/movie-rel
    """
    from llmrec.data.stats import format_stats
    from llmrec.data.tallrec_release import import_tallrec

    prepared = import_tallrec(sources, name=name)
    prepared.save(out)
    click.echo(format_stats(prepared.stats()))
    click.echo(f"\nwritten to {out}/")


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
@click.option("--adapter", "-a", type=click.Path(exists=True, file_okay=False), help="LoRA adapter (a train run folder or its adapter/).")
@click.option("--merge", is_flag=True, help="Merge the adapter into the weights before scoring.")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")
def evaluate_cmd(data, split, model_name, template, limit, batch_size, device, adapter, merge, run_dir, config_path,
                 overrides, print_config):
    """Score a prepared split (zero-shot, or with a LoRA adapter): predictions, metrics, plots in a run folder.

    \b
    Examples:
      llmrec evaluate --data prepared/ml-100k-tallrec --limit 1000
      llmrec evaluate -d prepared/ml-1m-rella --set history_k=30 --set scoring.batch_size=4
      llmrec evaluate -d prepared/bookcrossing-tallrec --adapter runs/tallrec-movie-256
    """
    import json

    from llmrec.evaluate import EvaluateConfig, evaluate

    named = {"data": data, "split": split, "model.name": model_name, "template": template, "limit": limit,
             "scoring.batch_size": batch_size, "model.device": device, "run_dir": run_dir, "adapter": adapter,
             "merge_adapter": True if merge else None}
    config = _config_command(EvaluateConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    path, result = evaluate(config, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(result["metrics"], indent=2))
    click.echo(f"run folder: {path}/")


@main.command("train")
@click.option("--data", "-d", help="Prepared folder (llmrec data prepare / data import-tallrec).")
@click.option("--shots", "train_samples", type=int, help="Few-shot: train on a seeded subset of N samples.")
@click.option("--seed", type=int, help="Seed of the run (LoRA init, data order, few-shot draw) [42].")
@click.option("--seeds", help="Comma-separated seeds: one run each under RUN_DIR/seed-N, plus summary.json.")
@click.option("--model", "-m", "model_name", help="'default', a hub id, a folder or a .gguf file.")
@click.option("--epochs", type=float, help="Training epochs [3].")
@click.option("--lr", type=float, help="Learning rate [3e-4].")
@click.option("--device", help="auto, cpu, cuda, mps [auto].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder; an interrupted run there resumes.")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")
def train_cmd(data, train_samples, seed, seeds, model_name, epochs, lr, device, run_dir, config_path, overrides,
              print_config):
    """LoRA-tune a model on a prepared split (TALLRec), select on valid, score test.

    \b
    Examples:
      llmrec train --data prepared/ml-100k-tallrec --shots 256
      llmrec train -c configs/tallrec/movie-256.yaml --seeds 0,1,2
      llmrec train -d prepared/ml-100k-tallrec --shots 64 --set test.data=prepared/bookcrossing-tallrec
    """
    import json

    from llmrec.train import TrainConfig, train, train_seeds

    named = {"data": data, "train_samples": train_samples, "seed": seed, "model.name": model_name,
             "optim.epochs": epochs, "optim.learning_rate": lr, "model.device": device, "run_dir": run_dir}
    config = _config_command(TrainConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    if seeds:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError as exc:
            raise click.BadParameter(f"--seeds must be comma-separated integers, got {seeds!r}") from exc
        path, summary = train_seeds(config, seed_list, log=echo)
        click.echo(json.dumps(summary["metrics"], indent=2))
    else:
        path, result = train(config, log=echo)
        click.echo(json.dumps({"valid_best": result["selection"]["best"], "test": result["metrics"]}, indent=2))
    click.echo(f"run folder: {path}/")


@main.command("suite")
@click.argument("suite_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output folder [runs/<suite name>].")
@click.option("--only", multiple=True, help="Run only this row (repeatable); the table covers all finished rows.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a field of every row's config.")
@click.option("--table-only", is_flag=True, help="Rebuild table.md / table.json from finished runs; run nothing.")
def suite_cmd(suite_file, out, only, overrides, table_only) -> None:
    """Run an experiment suite (a results table) and write OUT/table.md.

    Finished runs are skipped, so an interrupted suite continues where it stopped.

    \b
    Examples:
      llmrec suite configs/tallrec/table.yaml --out runs/tallrec-table
      llmrec suite configs/tallrec/table.yaml --only movie-256 --set test.limit=200
    """
    from llmrec.experiments import load_suite, run_suite, write_table

    suite = load_suite(suite_file)
    target = out or str(Path("runs") / suite.name)
    if table_only:
        table = write_table(suite, target)
    else:
        table = run_suite(suite_file, target, only=tuple(only), extra=tuple(overrides),
                          log=lambda m: click.echo(m, err=True))
    click.echo(table["markdown"])
    click.echo(f"table: {target}/table.md")


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


@bench.command("training")
@click.option("--data", "-d", default="prepared/ml-100k-tallrec", show_default=True, help="Prepared CTR folder.")
@click.option("--model", "-m", "model_name", default="default", show_default=True)
@click.option("--batch-size", default=8, show_default=True, help="Samples in the (fixed) batch.")
@click.option("--steps", default=4, show_default=True, help="Steps per path (the first is not timed).")
@click.option("--path", "paths", multiple=True, type=click.Choice(["trl_default", "trl_no_checkpointing", "answer_only"]),
              default=("trl_default", "trl_no_checkpointing", "answer_only"), show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Also write the JSON result here.")
def bench_training(data, model_name, batch_size, steps, paths, output) -> None:
    """Seconds per LoRA step: TRL's defaults vs the answer-only loss, same batch, same loss."""
    import json

    from llmrec.bench.training import run
    from llmrec.io import write_json

    result = run(data, model_name, batch_size, steps, tuple(paths), log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(result, indent=2))
    if output:
        write_json(output, result)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
