"""The explicit registry of data sets: name -> loader, default location, official download.

A data set is found, in order, at the path the user gives, under ``--data-root`` (or the
``LLMREC_DATA_ROOT`` environment variable), under ``./data`` and under ``../shared/data``;
failing that, with ``download=True``, the official archive is fetched into the cache
(``~/.cache/llmrec/downloads`` or ``LLMREC_CACHE``) and its published checksum verified.

>>> DATASETS["ml-1m"].url
'https://files.grouplens.org/datasets/movielens/ml-1m.zip'
>>> sorted(DATASETS)[:3]
['amazon-games', 'bookcrossing', 'files']

A data set the user describes (``files``: your own CSV / TSV / Parquet / JSON lines files,
docs/own-data.md) has a settings class (``config``): its settings are a section of the prepare
config named after it, its folder is ``path`` (default: the current folder; the settings' relative
paths start there) and its loader is called as ``loader(folder, settings)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from llmrec.data.download import download_archive
from llmrec.data.loaders.amazon import load_amazon
from llmrec.data.loaders.bookcrossing import load_bookcrossing
from llmrec.data.loaders.mind import load_mind
from llmrec.data.loaders.movielens import load_ml_1m, load_ml_100k, load_ml_csv
from llmrec.data.loaders.tabular import FilesConfig, files_of, is_implicit, load_files
from llmrec.data.schema import RecData
from llmrec.errors import ConfigError, DataError
from llmrec.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, fetch and load one data set."""

    name: str
    loader: Callable[..., RecData]
    """``loader(source)``; with ``config``: ``loader(folder, settings)``."""
    description: str
    candidates: tuple[str, ...]
    """Locations relative to a data root, tried in order (zip archives or directories)."""
    url: str | None = None
    md5: str | None = None
    """Checksum published by the data set's maintainers (GroupLens publishes MD5)."""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    config: type[BaseModel] | None = None
    """Settings of a data set the user describes: a prepare config section named after the data set."""
    inputs: Callable[[Path, Any], list[Path]] | None = None
    """With ``config``: the files the settings name (never an output folder; hashed for experiment step keys)."""
    implicit: Callable[[Any], bool] | None = None
    """With ``config``: whether the settings describe implicit feedback (no ratings: protocols that need ratings
    refuse it before anything is read)."""


def _csv_loader(name: str) -> Callable[[Path], RecData]:
    def load(path: Path) -> RecData:
        return load_ml_csv(path, name=name)

    load.__doc__ = f"Load {name} (MovieLens csv release)."
    return load


_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"

_SPECS = [
    DatasetSpec(
        "ml-100k", load_ml_100k, "MovieLens 100K (943 users, 1,682 movies); TALLRec movie domain",
        ("movielens/ml-100k.zip", "ml-100k.zip", "movielens/ml-100k", "ml-100k"),
        _GROUPLENS + "ml-100k.zip", "0e33842e24a9c977be4e0107933c0723",
    ),
    DatasetSpec(
        "ml-1m", load_ml_1m, "MovieLens 1M (6,040 users, 3,706 rated movies); ReLLa",
        ("movielens/ml-1m.zip", "ml-1m.zip", "movielens/ml-1m", "ml-1m"),
        _GROUPLENS + "ml-1m.zip", "c4d9eecfca2ab87c1945afe126590906",
    ),
    DatasetSpec(
        "ml-25m", _csv_loader("ml-25m"), "MovieLens 25M (csv release); ReLLa",
        ("movielens/ml-25m.zip", "ml-25m.zip", "movielens/ml-25m", "ml-25m"),
        _GROUPLENS + "ml-25m.zip", "6b51fb2759a8657d3bfcbfc42b592ada",
    ),
    DatasetSpec(
        "ml-latest-small", _csv_loader("ml-latest-small"), "MovieLens latest-small (csv release)",
        ("ml-latest-small", "movielens/ml-latest-small.zip", "ml-latest-small.zip"),
        _GROUPLENS + "ml-latest-small.zip", None, aliases=("ml-latest",),
    ),
    DatasetSpec(
        "bookcrossing", load_bookcrossing, "Book-Crossing explicit ratings 1-10; TALLRec book domain, ReLLa",
        ("bookcrossing", "BX-CSV-Dump.zip", "book-crossing"), aliases=("bx", "book-crossing"),
    ),
    DatasetSpec(
        "amazon-games", load_amazon, "Amazon Video Games text-rich sequences (item order, no timestamps); TRSR",
        ("amazon-games", "amazon/games"), aliases=("amazon",),
    ),
    DatasetSpec(
        "mind", load_mind, "MIND news (news.tsv + behaviors.tsv); TRSR",
        ("mind", "MINDsmall_train", "MINDsmall_train.zip"),
        "https://mind201910small.blob.core.windows.net/release/MINDsmall_train.zip", None,
    ),
    DatasetSpec(
        "files", load_files, "your own files (CSV, TSV, Parquet, JSON lines) named by a `files:` section of the "
        "prepare config; docs/own-data.md", (), config=FilesConfig, inputs=files_of, implicit=is_implicit,
    ),
]

DATASETS: Registry[DatasetSpec] = Registry(
    "data set", key="dataset", fold_case=True,
    describe=lambda s: s.description + (f" (alias: {', '.join(s.aliases)})" if s.aliases else ""))


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add (or replace) a data set under its name and aliases."""
    return DATASETS.register(spec, aliases=spec.aliases)


for _spec in _SPECS:
    register_dataset(_spec)


def get_spec(name: str) -> DatasetSpec:
    """Look a data set up by name or alias (any case); unknown names list the known ones."""
    return DATASETS[name]


def default_roots() -> list[Path]:
    """Data roots searched when no path is given."""
    roots = []
    if env := os.environ.get("LLMREC_DATA_ROOT"):
        roots.append(Path(env))
    roots += [Path("data"), Path("..") / "shared" / "data"]
    return roots


def resolve_source(
    name: str, path: str | Path | None = None, data_root: str | Path | None = None, download: bool = False
) -> Path:
    """Find the files of data set ``name`` (see the module docstring for the search order)."""
    spec = get_spec(name)
    if spec.config is not None:  # described by its settings: the folder their relative paths start at
        folder = Path(path).expanduser() if path is not None else Path(".")
        if not folder.is_dir():
            raise DataError("no such folder" if not folder.exists() else "not a folder", path=folder,
                            hint=f"`path` of the {spec.name} data set is the folder its files' relative paths "
                            "start at")
        return folder
    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise DataError("no such file or directory", path=p, hint=f"give the {spec.name} archive or folder")
        return p
    roots = [Path(data_root)] if data_root is not None else default_roots()
    tried = []
    for root in roots:
        for rel in spec.candidates:
            p = root / rel
            tried.append(str(p))
            if p.exists():
                return p
    if download and spec.url:
        return download_archive(spec.url, md5=spec.md5)
    how = "pass --path, --data-root or set LLMREC_DATA_ROOT"
    if spec.url:
        how += f", or --download to fetch {spec.url}"
    raise DataError(f"data set {spec.name!r} not found (tried: {', '.join(tried)})", hint=how)


def dataset_settings(name: str, settings: Any) -> BaseModel | None:
    """The settings of data set ``name`` validated by its ``config`` (None for a data set without settings); a
    ConfigError when a data set the user describes has none."""
    spec = get_spec(name)
    if spec.config is None:
        return None
    if settings is None:
        raise ConfigError(f"dataset {spec.name}: describe the files in a `{spec.name}:` section of a config file "
                          f"(llmrec data prepare --config FILE, llmrec data load {spec.name} --config FILE; "
                          "docs/own-data.md)")
    if isinstance(settings, spec.config):
        return settings
    try:
        return spec.config.model_validate(settings)
    except ValidationError as exc:
        raise ConfigError(f"{spec.name}: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())) from None


def input_files(name: str, source: Path, settings: Any = None) -> list[Path]:
    """The input files of a data set: its archive or folder, or the files its settings name."""
    spec = get_spec(name)
    if spec.config is None or spec.inputs is None:
        return [Path(source)]
    return spec.inputs(Path(source), dataset_settings(name, settings))


def load_dataset(
    name: str, path: str | Path | None = None, data_root: str | Path | None = None, download: bool = False,
    settings: Any = None,
) -> RecData:
    """Resolve and load a data set into the llmrec schema, e.g. ``load_dataset("ml-100k")``; a data set the user
    describes (``files``) takes its ``settings`` (its config class, or a mapping)."""
    spec = get_spec(name)
    source = resolve_source(spec.name, path, data_root, download)
    if spec.config is not None:
        data = spec.loader(source, dataset_settings(name, settings))
    else:
        data = spec.loader(source)
    data.name = spec.name  # one loader may serve several registered data sets
    return data
