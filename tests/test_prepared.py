"""A loaded prepared folder reads its Parquet files lazily, once, and only the columns asked for."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import llmrec.data.prepared as prepared_module
from llmrec.data.prepared import READS, LazyTables, PreparedData
from llmrec.data.protocols import RellaConfig, build_rella
from llmrec.errors import ConfigError, DataError
from tests.conftest import random_ratings
from tests.test_protocols import make_data


@pytest.fixture
def folder(tmp_path) -> Path:
    out = build_rella(make_data(random_ratings(20, 50, (6, 20), seed=7)), RellaConfig())
    return out.save(tmp_path / "p")


@pytest.fixture
def no_data_reads(monkeypatch):
    """Fail on any read of Parquet data (footers stay allowed): proves a step reads nothing but metadata."""
    def refuse(path, *a, **k):
        raise AssertionError(f"read the data of {path}")

    monkeypatch.setattr(prepared_module.pq, "read_table", refuse)


def test_loading_reads_nothing_but_meta_json_and_footers(folder, no_data_reads):
    READS.clear()
    prepared = PreparedData.load(folder)
    assert READS.tables == []
    assert sorted(Path(p).name for p in READS.footers) == ["items.parquet", "test.parquet", "train.parquet",
                                                           "users.parquet", "valid.parquet"]
    assert list(prepared.splits) == ["train", "valid", "test"] and "test" in prepared.splits
    assert prepared.num_rows("test") == pq.read_metadata(folder / "test.parquet").num_rows
    assert "history_end" in prepared.column_names("train")
    assert prepared.has_sequences and READS.tables == []


def test_a_split_asked_for_twice_is_read_once(folder):
    prepared = PreparedData.load(folder)
    READS.clear()
    first = prepared.split("test")
    assert prepared.splits["test"] is first and prepared.split("test") is first
    assert READS.count(folder / "test.parquet") == 1 and len(READS.tables) == 1
    prepared.items, prepared.items  # noqa: B018 - items are read once too
    assert READS.count(folder / "items.parquet") == 1


def test_projection_reads_only_the_asked_columns_and_does_not_poison_the_cache(folder):
    prepared = PreparedData.load(folder)
    READS.clear()
    some = prepared.split("train", columns=["label", "user"])
    assert some.column_names == ["label", "user"]
    assert READS.tables == [(str(folder / "train.parquet"), ("label", "user"))]
    whole = prepared.split("train")  # read whole now: every column, not the projection
    assert whole.column_names == pq.read_schema(folder / "train.parquet").names
    assert prepared.split("train", columns=["item"]).equals(whole.select(["item"]))  # from memory
    assert READS.count(folder / "train.parquet") == 2


def test_keep_false_reads_a_split_without_keeping_it(folder):
    prepared = PreparedData.load(folder)
    READS.clear()
    prepared.split("valid", keep=False)
    prepared.split("valid")
    assert READS.count(folder / "valid.parquet") == 2


def test_a_missing_column_is_one_line_naming_the_file_and_the_column(folder):
    prepared = PreparedData.load(folder)
    with pytest.raises(DataError, match=r"test\.parquet: field 'nope': no such column \(the table has sample_id"):
        prepared.split("test", columns=["user", "nope"])
    with pytest.raises(ConfigError, match="no split 'nope'"):
        prepared.split("nope", columns=["user"])
    with pytest.raises(DataError, match="field 'nope'"):
        prepared.table("sequences", columns=["nope"])


def test_required_columns_are_checked_at_load_from_the_footer(folder, monkeypatch):
    pq.write_table(pq.read_table(folder / "valid.parquet").drop_columns(["label"]), folder / "valid.parquet")
    monkeypatch.setattr(prepared_module.pq, "read_table", lambda *a, **k: pytest.fail("read data"))
    with pytest.raises(DataError, match=r"valid\.parquet: field 'label': missing column"):
        PreparedData.load(folder)


def test_a_folder_in_memory_answers_the_same_questions(folder):
    built = build_rella(make_data(random_ratings(20, 50, (6, 20), seed=7)), RellaConfig())
    loaded = PreparedData.load(folder)
    for name in built.splits:
        assert built.num_rows(name) == loaded.num_rows(name)
        assert built.column_names(name) == loaded.column_names(name)
        assert built.split(name, columns=["user", "label"]).equals(loaded.split(name, columns=["user", "label"]))
    assert built.table("sequences", columns=["user"]).equals(loaded.table("sequences", columns=["user"]))
    with pytest.raises(DataError, match="field 'nope'"):
        built.split("test", columns=["nope"])


def test_a_loaded_folder_saves_the_same_tables(folder, tmp_path):
    again = PreparedData.load(folder).save(tmp_path / "again")
    for p in sorted(folder.glob("*.parquet")):  # (a read and written table need not have the same bytes)
        assert pq.read_table(again / p.name).equals(pq.read_table(p)), p.name
    assert (again / "stats.json").read_text() == (folder / "stats.json").read_text()


def test_save_asks_for_each_split_once(folder, tmp_path):
    """Splits made on demand (e.g. by ``llmrec retrieve``) are made, written and dropped one at a time."""
    source = PreparedData.load(folder)
    made: list[str] = []

    def make(name: str) -> pa.Table:
        made.append(name)
        return source.split(name, keep=False)

    out = PreparedData(source.dataset, source.protocol, LazyTables(list(source.splits), make), source.items,
                       source.users, source.sequences, source.config, source.notes)
    out.save(tmp_path / "made")
    assert made == ["train", "valid", "test"]
    assert (tmp_path / "made" / "stats.json").read_text() == (folder / "stats.json").read_text()


def test_a_file_replaced_after_loading_is_refused_not_mixed(folder, tmp_path):
    prepared = PreparedData.load(folder)
    build_rella(make_data(random_ratings(20, 50, (6, 20), seed=8)), RellaConfig()).save(folder)  # prepared again
    with pytest.raises(DataError, match=r"test\.parquet: the file changed since the folder was opened"):
        prepared.split("test")


def test_the_fingerprint_is_the_tables_content_not_the_parquet_writers_bytes(folder, tmp_path):
    """The same data written by another pyarrow / pandas (other widths, compression, row groups, schema metadata)
    has the same fingerprint, so a run's key, and a record copied to another machine, stays the same; one changed
    value changes it. A folder prepared before content hashes keeps its byte-hash fingerprint."""
    import json
    import shutil

    from llmrec.data.prepared import folder_fingerprint
    from llmrec.io import table_sha256

    def parquet_sha256(path):  # the hash of the values a file holds (the saved one hashed them before writing)
        return table_sha256(pq.read_table(path))

    first = folder_fingerprint(folder)
    other = tmp_path / "other-writer"
    shutil.copytree(folder, other)
    for path in sorted(other.glob("*.parquet")):
        table = pq.read_table(path)
        wider = pa.table({name: (col.cast(pa.large_string()) if pa.types.is_string(col.type) else col)
                          for name, col in zip(table.column_names, table.columns, strict=True)})
        pq.write_table(wider.replace_schema_metadata({"pandas": "{}"}), path, compression="snappy", row_group_size=7)
    meta = json.loads((other / "meta.json").read_text())
    assert all(meta["files"][p.name] != prepared_module.file_sha256(p) for p in other.glob("*.parquet"))
    meta["content"] = {p.name: parquet_sha256(p) for p in sorted(other.glob("*.parquet"))}
    (other / "meta.json").write_text(json.dumps(meta))
    assert folder_fingerprint(other) == first

    changed = pq.read_table(other / "test.parquet")
    labels = changed.column("label").to_pylist()
    labels[0] = 1 - labels[0]
    changed = changed.set_column(changed.column_names.index("label"), "label", pa.array(labels, changed.schema.field("label").type))
    pq.write_table(changed, other / "test.parquet")
    assert parquet_sha256(other / "test.parquet") != meta["content"]["test.parquet"]
    meta["content"]["test.parquet"] = parquet_sha256(other / "test.parquet")
    (other / "meta.json").write_text(json.dumps(meta))
    assert folder_fingerprint(other) != first

    old = json.loads((folder / "meta.json").read_text())
    del old["content"]
    (folder / "meta.json").write_text(json.dumps(old))
    assert folder_fingerprint(folder) != first  # the byte hashes, as before


def test_the_content_hash_reads_values_not_layout():
    from llmrec.io import table_sha256

    lists = [["a", "b"], None, [], ["c"]]
    one = pa.table({"h": pa.array(lists, pa.list_(pa.string())), "r": pa.array([1.5, None, 2.0, 3.0], pa.float32())})
    chunked = pa.Table.from_batches(one.to_batches(max_chunksize=1))
    wide = pa.table({"h": pa.array(lists, pa.large_list(pa.large_string())), "r": pa.array([1.5, None, 2.0, 3.0])})
    assert chunked.column("h").num_chunks == 4
    assert table_sha256(one) == table_sha256(chunked) == table_sha256(wide)
    for other in ({"h": [["a", "b"], [], [], ["c"]], "r": [1.5, None, 2.0, 3.0]},   # a null list is not an empty one
                  {"h": [["ab"], None, [], ["c"]], "r": [1.5, None, 2.0, 3.0]},      # the items' boundaries count
                  {"h": lists, "r": [1.5, 0.0, 2.0, 3.0]}):                          # a null is not a zero
        assert table_sha256(pa.table(other)) != table_sha256(one)
    assert table_sha256(one.rename_columns(["g", "r"])) != table_sha256(one)
