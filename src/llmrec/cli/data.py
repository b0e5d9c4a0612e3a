"""``llmrec data ...``: load data sets into the schema, build protocol splits, audit them."""

from __future__ import annotations

from pathlib import Path

import click

from llmrec.cli.app import Group, RegistryChoice, config_command, config_options, echo_err


@click.group(cls=Group)
def data() -> None:
    """Load data sets into the llmrec schema and build protocol splits."""


def source_options(f):
    f = click.option("--download", is_flag=True, help="Fetch the official archive if not found locally.")(f)
    f = click.option("--data-root", type=click.Path(file_okay=False), help="Folder holding data sets.")(f)
    f = click.option("--path", "path", type=click.Path(),
                     help="Archive or folder of this data set (files: the folder its relative paths start at).")(f)
    return f


def _protocol_names() -> list[str]:
    from llmrec.data.protocols import buildable

    return buildable()


@data.command("list")
def data_list() -> None:
    """List the known data sets and protocols."""
    from llmrec.data.protocols import PROTOCOLS
    from llmrec.data.registry import DATASETS

    for title, registry in (("data sets", DATASETS), ("protocols", PROTOCOLS)):
        click.echo(f"{title}:")
        click.echo("\n".join(f"  {line}" for line in registry.listing().splitlines()))


@data.command("prepare")
@click.argument("dataset", required=False)
@click.option("--protocol", "-p", type=RegistryChoice(_protocol_names), help="Protocol to apply.")
@config_options
@source_options
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output folder [prepared/<dataset>-<protocol>].")
@click.option("--overwrite", is_flag=True, help="Replace an existing prepared folder of another data set/protocol.")
@click.option("--seed", type=int, help="Seed of the protocol (same as --set <protocol>.seed=N).")
def data_prepare(dataset, protocol, config_path, overrides, print_config, path, data_root, download, out, overwrite,
                 seed) -> None:
    """Build the train/valid/test splits of PROTOCOL on DATASET and print their statistics.

    The output folder must be new, empty, or a prepared folder of the same data set and
    protocol (replaced); anything else is refused, never emptied.

    Your own files are the data set `files`, described by a `files:` section of a --config file
    (interactions, items, users: paths and column maps; docs/own-data.md); --path is then the
    folder their relative paths start at.

    \b
    Examples:
      llmrec data prepare ml-1m --protocol rella
      llmrec data prepare ml-100k -p tallrec --set tallrec.few_shot=[16,64]
      llmrec data prepare amazon-games -p trsr --path ../shared/data/amazon-games
      llmrec data prepare --config my-data.yaml        # dataset: files + a files: section
    """
    from llmrec.configfile import read_yaml
    from llmrec.data.prepare import PrepareConfig, prepare
    from llmrec.data.stats import format_stats

    named = {"dataset": dataset, "protocol": protocol, "path": path, "data_root": data_root, "out": out,
             "download": True if download else None, "overwrite": True if overwrite else None}
    if seed is not None:
        proto = protocol or (read_yaml(config_path).get("protocol") if config_path else None)
        if proto is None:
            raise click.UsageError("--seed needs --protocol")
        named[f"{proto}.seed"] = seed
    if not (dataset and protocol) and not config_path:
        raise click.UsageError("give DATASET and --protocol (or a --config file that sets them)")
    config = config_command(PrepareConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    prepared, out_dir, timings = prepare(config, log=echo_err)
    click.echo(format_stats(prepared.stats()))
    click.echo(f"\nsplits written to {out_dir}/ ({', '.join(f'{k} {v:.1f}s' for k, v in timings.items())})")


@data.command("stats")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def data_stats(directory) -> None:
    """Print the statistics table of a prepared folder."""
    from llmrec.data.prepared import PreparedData
    from llmrec.data.stats import format_stats

    click.echo(format_stats(PreparedData.load(directory).stats()))


@data.command("audit")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def data_audit(directory, as_json) -> None:
    """Check a prepared folder for leakage: time order, split periods, user overlap, few-shot sources.

    Exits 1 when a promise of the protocol is broken.
    """
    import json

    from llmrec.data.audit import audit_prepared, format_audit

    report = audit_prepared(directory)
    click.echo(json.dumps(report, indent=2) if as_json else format_audit(report))
    if not report["ok"]:
        raise SystemExit(1)


@data.command("load")
@click.argument("dataset")
@source_options
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output folder [prepared/<dataset>].")
@click.option("--overwrite", is_flag=True, help="Replace an existing schema folder of another data set.")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False),
              help="Dataset files: a prepare config whose `files:` section (and `path`) describe your files.")
def data_load(dataset, path, data_root, download, out, overwrite, config_path) -> None:
    """Convert DATASET into the llmrec schema (interactions/items/users Parquet).

    \b
    Examples:
      llmrec data load ml-1m
      llmrec data load files --config my-data.yaml -o prepared/my-shop
    """
    from llmrec.configfile import read_yaml
    from llmrec.data.registry import get_spec, input_files, load_dataset, resolve_source
    from llmrec.data.schema import check_schema_target

    spec = get_spec(dataset)
    described = read_yaml(config_path) if config_path else {}
    settings = described.get(spec.name) if spec.config is not None else None
    path = path if path is not None else described.get("path") if spec.config is not None else path
    target = Path(out) if out else Path("prepared") / spec.name
    source = resolve_source(spec.name, path, data_root, download)
    sources = input_files(spec.name, source, settings)
    check_schema_target(target, spec.name, overwrite, sources=sources)
    loaded = load_dataset(spec.name, str(source), data_root, download, settings=settings)
    loaded.save(target, overwrite=overwrite, sources=sources)
    s = loaded.summary()
    click.echo(
        f"{s['name']}: {s['interactions']:,} interactions, {s['users']:,} users, {s['items']:,} items "
        f"(timestamps: {s['timestamp_kind']}) -> {target}/"
    )


@data.command("import-tallrec")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", "-o", type=click.Path(file_okay=False), required=True, help="Prepared folder to write.")
@click.option("--name", default="tallrec-release", show_default=True, help="Data set name stored in meta.json.")
@click.option("--overwrite", is_flag=True, help="Replace an existing prepared folder of another data set/protocol.")
def data_import_tallrec(sources, out, name, overwrite) -> None:
    """Import TALLRec's released splits (JSON lists of {instruction, input, output}).

    SOURCES are files (the split is the file name: train.json -> train), SPLIT=FILE pairs,
    or a folder holding train.json / valid.json / test.json.

    \b
    Examples:
      llmrec data import-tallrec TALLRec/data/movie --out prepared/tallrec-movie-release
      llmrec data import-tallrec train=movie_train.json test=movie_test.json -o prepared/movie-rel
    """
    from llmrec.data.prepared import check_prepared_target
    from llmrec.data.stats import format_stats
    from llmrec.data.tallrec_release import import_tallrec, parse_sources

    files = parse_sources(sources)
    check_prepared_target(out, name, "instruction", overwrite, sources=list(files.values()))
    prepared = import_tallrec(sources, name=name)
    prepared.save(out, overwrite=overwrite, sources=list(files.values()))
    click.echo(format_stats(prepared.stats()))
    click.echo(f"\nwritten to {out}/")


@data.command("download")
@click.argument("dataset")
def data_download(dataset) -> None:
    """Download DATASET's official archive into the cache (verified where a checksum is published)."""
    from llmrec.data.download import download_archive
    from llmrec.data.registry import get_spec

    spec = get_spec(dataset)
    if not spec.url:
        raise click.ClickException(f"{spec.name} has no official download; get it by hand and pass --path")
    path = download_archive(spec.url, md5=spec.md5)
    check = f"md5 {spec.md5} verified" if spec.md5 else "no published checksum: not verified"
    click.echo(f"{path} ({check})")
