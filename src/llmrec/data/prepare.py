"""``llmrec data prepare``: load a data set, apply a protocol, write the splits.

>>> cfg = PrepareConfig(dataset="ml-1m", protocol="rella")
>>> cfg.rella.min_history, cfg.output_dir()
(5, PosixPath('prepared/ml-1m-rella'))

Your own files are the ``files`` data set, described by a ``files:`` section (docs/own-data.md):

>>> cfg = PrepareConfig(dataset="files", protocol="trsr", files={"interactions": "clicks.csv", "items": "items.csv"})
>>> cfg.files.interactions.path, cfg.output_dir()
('clicks.csv', PosixPath('prepared/files-trsr'))
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from llmrec.data.prepared import check_prepared_target
from llmrec.data.protocols import PROTOCOLS, PreparedData, buildable
from llmrec.data.registry import DATASETS, get_spec, input_files, load_dataset, resolve_source
from llmrec.errors import ConfigError, DataError


class PrepareConfig(BaseModel):
    """Everything ``llmrec data prepare`` needs; every field can be overridden from the CLI.

    Each registered protocol with builder settings has a section named after it (``rella:
    {min_history: 5}``), validated by the config class on its record (:class:`~llmrec.data.protocols.Protocol`);
    sections not given hold their defaults, and ``config.rella`` reads one. A data set the user describes
    (``files``) has its section too (``files: {interactions: ..., items: ...}``, the ``config`` class of its
    :class:`~llmrec.data.registry.DatasetSpec`), given with that data set only.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="data set name, see `llmrec data list`")
    protocol: str = Field(description="a protocol that builds samples: tallrec, rella, trsr (llmrec data list)")
    path: str | None = Field(None, description="archive or folder of the data set (default: search the data roots); "
                             "dataset files: the folder its files' relative paths start at (default: the current one)")
    data_root: str | None = Field(None, description="folder holding data sets (default: $LLMREC_DATA_ROOT, ./data, ../shared/data)")
    download: bool = Field(False, description="fetch the official archive when not found locally")
    out: str | None = Field(None, description="output folder (default: prepared/<dataset>-<protocol>)")
    settings: dict[str, Any] = Field(default_factory=dict, description="builder settings by protocol, given as "
                                     "<protocol>: {...} (one section per registered protocol); and the files of "
                                     "dataset files, given as files: {...} (docs/own-data.md)")

    overwrite: bool = Field(False, description="replace an existing prepared folder of another data set/protocol")

    @model_validator(mode="before")
    @classmethod
    def _protocol_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = dict(data.pop("settings", None) or {})
        described = DATASETS.names(lambda s: s.config is not None)  # data sets with a settings section
        for name in [k for k in data if (k in PROTOCOLS or k in described) and k not in cls.model_fields]:
            given[name] = data.pop(name)
        unknown = [k for k in given if (k not in PROTOCOLS or PROTOCOLS[k].config is None) and k not in described]
        if unknown:
            raise ValueError(f"{unknown[0]}: not a protocol with builder settings nor a data set with a settings "
                             f"section (those are: {', '.join(PROTOCOLS.names(lambda p: p.config is not None))}; "
                             f"{', '.join(described)})")
        dataset = data.get("dataset")
        chosen = DATASETS[dataset].name if isinstance(dataset, str) and dataset in DATASETS else None
        sections = {}
        for name in described:
            if name not in given:
                continue
            if chosen != name:
                raise ValueError(f"{name}: a section of data set {name}, but the dataset is "
                                 f"{data.get('dataset')!r} (set dataset: {name}, or remove the section)")
            record = DATASETS[name].config
            value = given[name]
            try:
                sections[name] = value if isinstance(value, record) else record.model_validate(value or {})
            except ValidationError as exc:
                raise ValidationError.from_exception_data(
                    cls.__name__, [{**e, "loc": (name, *e["loc"])} for e in exc.errors()]) from None
        for name, record in PROTOCOLS.items():
            if record.config is None:
                continue
            value = given.get(name)
            if isinstance(value, record.config):
                sections[name] = value
                continue
            try:
                sections[name] = record.config.model_validate(value or {})
            except ValidationError as exc:  # the section's own errors, located under its name
                raise ValidationError.from_exception_data(
                    cls.__name__, [{**e, "loc": (name, *e["loc"])} for e in exc.errors()]) from None
        if chosen is not None and DATASETS[chosen].config is not None and chosen not in sections:
            raise ValueError(f"dataset {chosen}: describe your files in a `{chosen}:` section (interactions, "
                             "items, users: paths and columns; docs/own-data.md)")
        data["settings"] = sections
        return data

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        if value not in PROTOCOLS:
            raise PROTOCOLS.unknown(value)
        if value not in buildable():
            raise ValueError(f"protocol {value!r} is not built by llmrec data prepare (it is imported); choose one "
                             f"of {', '.join(buildable())}")
        return value

    @model_serializer(mode="wrap")
    def _flat_sections(self, handler) -> dict[str, Any]:
        """Sections dump as ``<protocol>: {...}`` beside the other fields (the file format, and the step keys)."""
        out = handler(self)
        if isinstance(out, dict) and "settings" in out:
            sections = out.pop("settings")
            out.update(sections)
        return out

    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("settings") or {}
        if name in settings:
            return settings[name]
        return super().__getattr__(name)

    def output_dir(self) -> Path:
        return Path(self.out) if self.out else Path("prepared") / f"{get_spec(self.dataset).name}-{self.protocol}"

    def protocol_config(self) -> BaseModel:
        """The settings of the chosen protocol's builder."""
        return self.settings[self.protocol]

    def dataset_config(self) -> BaseModel | None:
        """The settings of a data set the user describes (the ``files:`` section); None for the others."""
        return self.settings.get(get_spec(self.dataset).name) if get_spec(self.dataset).config else None


def _check_feedback(config: PrepareConfig) -> None:
    """A protocol that labels ratings refuses a data set described as implicit feedback (before any reading)."""
    spec, protocol = get_spec(config.dataset), PROTOCOLS[config.protocol]
    settings = config.dataset_config()
    if protocol.needs_ratings and spec.implicit is not None and settings is not None and spec.implicit(settings):
        can = ", ".join(n for n in buildable() if not PROTOCOLS[n].needs_ratings)
        raise ConfigError(f"protocol {config.protocol}: labels are rating > threshold, but {spec.name}."
                          f"interactions.columns.rating is null (implicit feedback); map the rating column, or use "
                          f"a protocol that runs on implicit feedback: {can}")


def check_prepare(config: PrepareConfig) -> None:
    """The cheap checks of a prepare config before anything runs: a known data set, and its files found (unless
    ``download`` fetches them); a protocol that needs ratings on data described without them. The output folder
    is checked when the step runs (an experiment may first remove its own stale copy)."""
    get_spec(config.dataset)
    _check_feedback(config)
    if not config.download:
        source = resolve_source(config.dataset, config.path, config.data_root, download=False)
        for path in input_files(config.dataset, source, config.dataset_config()):
            if not path.exists():
                raise DataError("no such file", path=path, hint="check the paths of the files: section "
                                "(relative paths start at the config's path, default the current folder)")


def check_two_classes(prepared: PreparedData, out: str | Path) -> None:
    """A DataError naming the split when every label of a split is the same (nothing to learn or rank by: AUC
    undefined), as when one stray rating moves the default threshold; nothing is written.

    >>> import pyarrow as pa
    >>> one = PreparedData("toy", "tallrec", {"test": pa.table({"label": [0, 0]})}, None, None, None,
    ...                    {"label_threshold": 5})
    >>> check_two_classes(one, "out")
    Traceback (most recent call last):
        ...
    llmrec.errors.DataError: out: split 'test': every one of its 2 labels is 0 (label = rating > 5); check the ratings and the label_threshold
    """
    threshold = prepared.config.get("label_threshold")
    rule = f" (label = rating > {threshold:g})" if isinstance(threshold, (int, float)) else ""
    for name, table in prepared.splits.items():
        if "label" not in table.column_names or table.num_rows == 0:
            continue
        labels = pc.unique(table.column("label")).to_pylist()
        if len(labels) == 1:
            raise DataError(f"split {name!r}: every one of its {table.num_rows:,} labels is {labels[0]}{rule}; "
                            "check the ratings and the label_threshold", path=out)


def prepare(config: PrepareConfig, *, log=print) -> tuple[PreparedData, Path, dict[str, float]]:
    """Run the whole preparation; returns the prepared data, its folder and step timings.

    Example (MovieLens-100K under TALLRec's protocol, from ./data, ../shared/data or $LLMREC_DATA_ROOT)::

        import llmrec

        data, folder, timings = llmrec.prepare(llmrec.PrepareConfig(dataset="ml-100k", protocol="tallrec"))
        folder  # prepared/ml-100k-tallrec
    """
    timings = {}
    t0 = time.perf_counter()
    name = get_spec(config.dataset).name
    _check_feedback(config)
    settings = config.dataset_config()
    source = resolve_source(config.dataset, config.path, config.data_root, config.download)
    sources = input_files(config.dataset, source, settings)
    check_prepared_target(config.output_dir(), name, config.protocol, config.overwrite, sources=sources)
    data = load_dataset(config.dataset, str(source), config.data_root, config.download, settings=settings)
    timings["load_s"] = time.perf_counter() - t0
    log(f"loaded {data.name}: {len(data.interactions):,} interactions ({timings['load_s']:.1f} s)")
    notes = list(data.extra.get("notes", []))
    for note in notes:
        log(f"note: {note}")
    t1 = time.perf_counter()
    protocol = PROTOCOLS[config.protocol]
    prepared = protocol.build(data, config.protocol_config())
    described = {name: settings.model_dump(mode="json")} if settings is not None else {}
    prepared.config = {"dataset": config.dataset, "source": data.sources, **described, **prepared.config}
    prepared.notes = [*notes, *prepared.notes]
    check_two_classes(prepared, config.output_dir())
    timings["build_s"] = time.perf_counter() - t1
    log(f"built {config.protocol} samples ({timings['build_s']:.1f} s)")
    t2 = time.perf_counter()
    out = prepared.save(config.output_dir(), overwrite=config.overwrite, sources=sources)
    timings["write_s"] = time.perf_counter() - t2
    log(f"wrote {out} ({timings['write_s']:.1f} s)")
    return prepared, out, timings
