"""Your own data (the ``files`` data set, docs/own-data.md): every format, every timestamp form, implicit feedback,
every bad input as one line naming file / line / column, every protocol end to end, and ML-1M re-shaped as a
shop's export giving exactly ML-1M's ReLLa splits."""

from __future__ import annotations

import gzip
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
import yaml
from click.testing import CliRunner

from llmrec.cli import main
from llmrec.data.loaders.tabular import FilesConfig, load_files
from llmrec.data.prepare import PrepareConfig, check_prepare, prepare
from llmrec.data.prepared import PreparedData
from llmrec.errors import ConfigError
from tests.conftest import random_ratings

REPO = Path(__file__).resolve().parents[1]

COLUMNS = {"user": "customer", "item": "sku", "rating": "stars", "timestamp": "at"}
ITEMS = {"path": "products.csv", "columns": {"item": "sku", "title": "name"}, "text": {"genres": "tags"},
         "lists": ["genres"], "list_separator": ";"}


def run(*args, expect=0):
    result = CliRunner().invoke(main, list(map(str, args)))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert result.exit_code == expect, result.output
    return result.output


def one_error_line(out: str) -> str:
    assert "Traceback" not in out, out
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, out
    return lines[0]


def shop_frames(n_users=30, n_items=60, per_user=(12, 30), seed=0):
    """A tiny shop: orders (string ids, ISO times), products (tags joined by '; '), customers."""
    rows = random_ratings(n_users, n_items, per_user, seed=seed)
    orders = pd.DataFrame(rows, columns=["customer", "sku", "stars", "at"])
    orders["customer"] = "c" + orders["customer"].astype(str)
    orders["sku"] = "p" + orders["sku"].astype(str)
    products = pd.DataFrame({"sku": [f"p{i}" for i in range(1, n_items + 1)],
                             "name": [f"Product {i}, size {'SML'[i % 3]}" for i in range(1, n_items + 1)],
                             "tags": [f"kitchen; {'tea' if i % 2 else 'coffee'}" for i in range(1, n_items + 1)]})
    customers = pd.DataFrame({"customer": [f"c{u}" for u in range(1, n_users + 1)],
                              "sex": ["female" if u % 2 else "male" for u in range(1, n_users + 1)]})
    return orders, products, customers


def iso(seconds: pd.Series) -> pd.Series:
    return pd.Series(np.datetime_as_string(seconds.to_numpy().astype("datetime64[s]"), unit="s")).astype(object) + "Z"


def write(frame: pd.DataFrame, path: Path, **kw) -> Path:
    """``frame`` in the format of ``path``'s extension."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
        return path
    if name.endswith(".jsonl"):
        text = frame.to_json(orient="records", lines=True)
    else:
        text = frame.to_csv(index=False, sep="\t" if name.endswith(".tsv") else kw.get("sep", ","))
    data = text.encode(kw.get("encoding", "utf-8"))
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.fixture
def shop(tmp_path) -> Path:
    """orders.csv (ISO 8601 times), products.csv, customers.csv in tmp_path/shop."""
    folder = tmp_path / "shop"
    folder.mkdir()
    orders, products, customers = shop_frames()
    orders["at"] = iso(orders["at"])
    write(orders, folder / "orders.csv")
    write(products, folder / "products.csv")
    write(customers, folder / "customers.csv")
    return folder


def settings(**over) -> dict:
    base = {"interactions": {"path": "orders.csv", "columns": dict(COLUMNS)}, "items": dict(ITEMS),
            "users": {"path": "customers.csv", "columns": {"user": "customer"}, "profile": {"gender": "sex"}}}
    for key, value in over.items():
        if value is None:
            base.pop(key)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def load(folder: Path, **over):
    return load_files(folder, FilesConfig.model_validate(settings(**over)))


def config_file(tmp_path: Path, protocol: str, shop: Path, **extra) -> Path:
    cfg = tmp_path / f"{protocol}.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "files", "protocol": protocol, "path": str(shop),
                                   "files": settings(), **extra}))
    return cfg


# --- formats and values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["orders.csv", "orders.tsv", "orders.parquet", "orders.jsonl", "orders.csv.gz",
                                  "orders.txt"])
def test_every_format_gives_the_same_tables(tmp_path, shop, name):
    orders, _, _ = shop_frames()
    orders["at"] = iso(orders["at"])
    write(orders, tmp_path / "shop" / (name if name != "orders.txt" else "orders.tsv"))
    if name == "orders.txt":
        (tmp_path / "shop" / "orders.tsv").rename(tmp_path / "shop" / "orders.txt")
    fmt = {"format": "tsv"} if name == "orders.txt" else {}
    data = load(shop, interactions={"path": name, **fmt})
    reference = load(shop)
    pd.testing.assert_frame_equal(data.interactions, reference.interactions)
    assert data.interactions["user"].iloc[0].startswith("c") and data.timestamp_kind == "unix"
    assert data.items["genres"].iloc[0] in ("kitchen, tea", "kitchen, coffee")
    assert data.users.columns.tolist() == ["user", "gender"]


def test_items_and_users_in_parquet_and_json_lines_with_native_lists(tmp_path, shop):
    _, products, customers = shop_frames()
    products["tags"] = products["tags"].str.split("; ")
    write(products, shop / "products.parquet")
    write(products, shop / "products.jsonl")
    write(customers, shop / "customers.jsonl")
    a = load(shop, items={"path": "products.parquet"}, users={"path": "customers.jsonl"})
    b = load(shop, items={"path": "products.jsonl"})
    assert a.items["genres"].tolist() == b.items["genres"].tolist() == load(shop).items["genres"].tolist()
    assert a.users["gender"].tolist() == load(shop).users["gender"].tolist()


def test_delimiter_quote_and_encoding_options(tmp_path, shop):
    _, products, _ = shop_frames()
    products.loc[0, "name"] = "Crème brûlée; the \"best\" one"
    write(products, shop / "products.csv", sep=";", encoding="latin-1")
    data = load(shop, items={"delimiter": ";", "encoding": "latin-1", "list_separator": "/"})
    assert data.items["title"].iloc[0] == "Crème brûlée; the \"best\" one"


@pytest.mark.parametrize("form,values,fmt", [
    ("epoch seconds", ["1709287200", "1709287260"], "auto"),
    ("epoch milliseconds", ["1709287200000", "1709287260000"], "auto"),
    ("ISO 8601 with Z", ["2024-03-01T10:00:00Z", "2024-03-01T10:01:00Z"], "auto"),
    ("ISO 8601 with an offset", ["2024-03-01T11:00:00+01:00", "2024-03-01T11:01:00+01:00"], "iso8601"),
    ("ISO 8601 without a zone (UTC)", ["2024-03-01 10:00:00", "2024-03-01 10:01:00"], "auto"),
    ("strftime", ["01/03/2024 10:00", "01/03/2024 10:01"], "%d/%m/%Y %H:%M"),
    ("stated seconds", ["1709287200", "1709287260"], "seconds"),
    ("stated milliseconds", ["1709287200000", "1709287260000"], "milliseconds"),
])
def test_every_timestamp_form(tmp_path, form, values, fmt):
    (tmp_path / "orders.csv").write_text("customer,sku,stars,at\n" + "".join(
        f"c1,p{i},{4 - i},{v}\n" for i, v in enumerate(values, 1)))
    (tmp_path / "products.csv").write_text("sku,name,tags\np1,A,x\np2,B,y\n")
    data = load(tmp_path, interactions={"timestamp_format": fmt}, users=None)
    assert data.interactions["timestamp"].tolist() == [1709287200, 1709287260], form


def test_parquet_datetimes_and_sub_second_order(tmp_path):
    stamps = pd.to_datetime(["2024-03-01T10:00:00.900Z", "2024-03-01T10:00:00.100Z"], utc=True)
    pd.DataFrame({"customer": ["c1", "c1"], "sku": ["p1", "p2"], "stars": [5, 2], "at": stamps}).to_parquet(
        tmp_path / "orders.parquet")
    (tmp_path / "products.csv").write_text("sku,name,tags\np1,A,x\np2,B,y\n")
    data = load(tmp_path, interactions={"path": "orders.parquet"}, users=None)
    # both in the same second: the rows are put in the order of their exact times (p2 first)
    assert data.interactions["item"].tolist() == ["p2", "p1"]
    assert data.interactions["timestamp"].tolist() == [1709287200, 1709287200]
    assert any("exact times" in n for n in data.extra["notes"])


def test_no_timestamp_column_means_no_time(tmp_path, shop):
    data = load(shop, interactions={"columns": {**COLUMNS, "timestamp": None}})
    assert data.timestamp_kind == "none"
    prepared, _, _ = prepare(PrepareConfig(dataset="files", protocol="rella", path=str(shop), out=str(tmp_path / "o"),
                                           files=settings(interactions={"columns": {**COLUMNS, "timestamp": None}})),
                             log=lambda m: None)
    assert prepared.config["order"] == "random"


def test_implicit_feedback_runs_trsr_and_is_refused_by_rating_protocols(tmp_path, shop):
    implicit = settings(interactions={"columns": {**COLUMNS, "rating": None}})
    data = load_files(shop, FilesConfig.model_validate(implicit))
    assert data.interactions["rating"].isna().all()
    trsr = {"min_interactions": 10, "max_interactions": 40, "eval_negatives": 5, "n_test": 5, "n_valid": 5}
    out = tmp_path / "trsr"
    prepared, _, _ = prepare(PrepareConfig(dataset="files", protocol="trsr", path=str(shop), out=str(out),
                                           files=implicit, trsr=trsr), log=lambda m: None)
    assert prepared.split("test").num_rows == 5
    for protocol in ("tallrec", "rella"):
        cfg = PrepareConfig(dataset="files", protocol=protocol, path=str(shop), out=str(tmp_path / protocol),
                            files=implicit)
        with pytest.raises(ConfigError, match=f"protocol {protocol}: labels are rating > threshold.*trsr"):
            check_prepare(cfg)
        cfg_file = tmp_path / f"{protocol}-implicit.yaml"
        cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        line = one_error_line(run("data", "prepare", "--config", cfg_file, expect=1))
        assert "implicit feedback" in line and not (tmp_path / protocol).exists()
    listed = run("data", "list")
    assert "files" in listed and "needs ratings" in listed and "ratings or implicit feedback" in listed


def test_unknown_ids_can_be_dropped_or_kept(tmp_path, shop):
    orders = pd.read_csv(shop / "orders.csv", dtype=str)
    extra = pd.DataFrame({"customer": ["c1", "c999"], "sku": ["p999", "p1"], "stars": ["3", "4"],
                          "at": ["2001-01-01T00:00:00Z"] * 2})
    write(pd.concat([orders, extra]), shop / "orders.csv")
    data = load(shop, unknown_items="drop", unknown_users="drop")
    assert len(data.interactions) == len(orders)
    kept = load(shop, unknown_items="drop", unknown_users="keep")
    assert len(kept.interactions) == len(orders) + 1
    assert kept.users.set_index("user").loc["c999", "gender"] == ""
    assert any("dropped" in n for n in kept.extra["notes"])


# --- bad files: one line naming file, line and column -----------------------------------------------------------


def bad_case(tmp_path, shop, case):
    """Break the tiny shop one way; returns (settings overrides, the fragments the error line must hold)."""
    orders = pd.read_csv(shop / "orders.csv", dtype=str)
    if case == "missing column":
        return {"interactions": {"columns": {**COLUMNS, "rating": "score"}}}, [
            "orders.csv:1", "field 'score'", "no column 'score'", "customer, sku, stars, at",
            "files.interactions.columns.rating"]
    if case == "duplicate item":
        text = (shop / "products.csv").read_text().splitlines()
        (shop / "products.csv").write_text("\n".join([*text, text[3]]) + "\n")
        return {}, [f"products.csv:{len(text) + 1}", "field 'sku'", "duplicate item id 'p3' (first on line 4)"]
    if case == "bad timestamp":
        orders.loc[6, "at"] = "31/12/2000"
        write(orders, shop / "orders.csv")
        return {}, ["orders.csv:8", "field 'at'", "'31/12/2000'", "timestamp_format"]
    if case == "bad rating":
        orders.loc[2, "stars"] = "five"
        write(orders, shop / "orders.csv")
        return {}, ["orders.csv:4", "field 'stars'", "rating 'five' is not a number"]
    if case == "empty id":
        orders.loc[4, "customer"] = None
        write(orders, shop / "orders.csv")
        return {}, ["orders.csv:6", "field 'customer'", "empty user id"]
    if case == "unknown items":
        orders.loc[[3, 9], "sku"] = "p999"
        write(orders, shop / "orders.csv")
        return {}, ["orders.csv:5", "field 'sku'", "2 interactions name 1 item id not in", "products.csv",
                    "'p999'", "unknown_items: drop"]
    if case == "unknown users":
        orders.loc[5, "customer"] = "c999"
        write(orders, shop / "orders.csv")
        return {}, ["orders.csv:7", "field 'customer'", "1 interaction names 1 user id not in", "customers.csv",
                    "unknown_users: drop"]
    if case == "undecodable bytes":
        raw = (shop / "products.csv").read_bytes().splitlines(keepends=True)
        raw[5] = raw[5].replace(b"Product", b"Caf\xe9 Product")
        (shop / "products.csv").write_bytes(b"".join(raw))
        return {}, ["products.csv:6", "field 'name'", "not utf-8 text (byte 0xe9)", "files.items.encoding"]
    if case == "bad JSON line":
        lines = orders.to_json(orient="records", lines=True).splitlines()
        lines[3] = lines[3][:-1]
        (shop / "orders.jsonl").write_text("\n".join(lines) + "\n")
        return {"interactions": {"path": "orders.jsonl"}}, ["orders.jsonl:4", "invalid JSON: "]
    if case == "parquet row":
        orders.loc[2, "at"] = "yesterday"
        orders.to_parquet(shop / "orders.parquet")
        return {"interactions": {"path": "orders.parquet"}}, ["orders.parquet", "field 'at'", "row 3",
                                                               "'yesterday'"]
    if case == "missing file":
        return {"items": {"path": "catalog.csv"}}, ["catalog.csv", "no such file"]
    if case == "unknown extension":
        (shop / "orders.dat").write_text("x")
        return {"interactions": {"path": "orders.dat"}}, ["orders.dat", "'.dat'", "files.interactions.format"]
    if case == "wrong delimiter":
        write(orders, shop / "orders.csv", sep=";")
        return {}, ["orders.csv:1", "no column 'customer'", "customer;sku;stars;at"]
    if case == "stray rating":  # one 9 among 1-5 stars: mixed scales, not a 0-10 scale (issue 34)
        orders.loc[7, "stars"] = "9"
        write(orders, shop / "orders.csv")
        return {}, ["orders.csv:9", "field 'stars'", "rating 9 is above 5", "mixed scales",
                    "files.interactions.rating_scale: [0, 10]"]
    if case == "outside rating_scale":
        orders.loc[10, "stars"] = "0"
        write(orders, shop / "orders.csv")
        return {"interactions": {"rating_scale": [1, 5]}}, ["orders.csv:12", "field 'stars'",
                                                            "rating 0 is outside the rating scale 1-5"]
    if case == "rating above 10":
        orders.loc[1, "stars"] = "99"
        write(orders, shop / "orders.csv")
        return {}, ["orders.csv:3", "field 'stars'", "rating 99 is outside 0-10", "files.interactions.rating_scale"]
    raise AssertionError(case)


BAD_CASES = ["missing column", "duplicate item", "bad timestamp", "bad rating", "empty id", "unknown items",
             "unknown users", "undecodable bytes", "bad JSON line", "parquet row", "missing file",
             "unknown extension", "wrong delimiter", "stray rating", "outside rating_scale", "rating above 10"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_files_fail_with_one_line_naming_file_line_and_column(tmp_path, shop, case):
    over, fragments = bad_case(tmp_path, shop, case)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "files", "protocol": "rella", "path": str(shop),
                                   "out": str(tmp_path / "out"), "files": settings(**over)}))
    line = one_error_line(run("data", "prepare", "--config", cfg, expect=1))
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_rating_scale_is_configured_or_read_from_the_ratings(tmp_path, shop):
    """Without ``rating_scale`` the scale is read from the ratings (0-5, or 0-10 when more than 1% exceed 5); a
    configured scale takes stray-looking ratings, and sets the default label threshold."""
    assert load(shop).extra["rating_scale"] == [0, 5]
    orders = pd.read_csv(shop / "orders.csv", dtype=str)
    orders.loc[7, "stars"] = "9"
    write(orders, shop / "orders.csv")
    data = load(shop, interactions={"rating_scale": [0, 10]})
    assert data.extra["rating_scale"] == [0, 10] and data.interactions["rating"].max() == 9
    orders["stars"] = (orders["stars"].astype(int).clip(upper=5) * 2).astype(str)  # a 0-10 scale
    write(orders, shop / "orders.csv")
    assert load(shop).extra["rating_scale"] == [0, 10]
    with pytest.raises(ValueError, match="low < high"):
        FilesConfig.model_validate(settings(interactions={"rating_scale": [5, 1]}))
    from llmrec.data.protocols.base import default_threshold

    assert default_threshold(load(shop)) == 5
    with pytest.raises(ConfigError, match="no default for files's rating scale 0-100"):
        default_threshold(load(shop, interactions={"rating_scale": [0, 100]}))


def test_config_errors(tmp_path, shop, tiny_ml1m):
    line = one_error_line(run("data", "prepare", "files", "-p", "rella", expect=1))
    assert "dataset files: describe your files in a `files:` section" in line
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "ml-1m", "protocol": "rella", "files": settings()}))
    assert "a section of data set files, but the dataset is 'ml-1m'" in one_error_line(
        run("data", "prepare", "-c", cfg, expect=1))
    for key, value, fragment in [("files.interactions.timestamp_format", "weekly", "timestamp_format"),
                                 ("files.items.delimiter", "';;'", "must be one character"),
                                 ("files.items.lists", "[colour]", "'colour' is not a text field"),
                                 ("files.interactions.encoding", "klingon", "unknown text encoding"),
                                 ("files.interactions.colums", "{}", "files.interactions.colums")]:
        cfg.write_text(yaml.safe_dump({"dataset": "files", "protocol": "rella", "path": str(shop),
                                       "files": settings()}))
        line = one_error_line(run("data", "prepare", "-c", cfg, "--set", f"{key}={value}", expect=1))
        assert fragment in line, line


def test_data_load_reads_the_files_section_of_a_config(tmp_path, shop):
    cfg = config_file(tmp_path, "rella", shop)
    out = run("data", "load", "files", "--config", cfg, "-o", tmp_path / "schema")
    assert "files: " in out and "(timestamps: unix)" in out
    assert len(pd.read_parquet(tmp_path / "schema" / "interactions.parquet")) == len(load(shop).interactions)
    assert "llmrec data load files --config FILE" in one_error_line(run("data", "load", "files", expect=1))


def test_output_folder_holding_the_files_is_refused(tmp_path, shop):
    cfg = config_file(tmp_path, "rella", shop, out=str(shop))
    assert "holds the input" in one_error_line(run("data", "prepare", "-c", cfg, expect=1))
    assert sorted(p.name for p in shop.iterdir()) == ["customers.csv", "orders.csv", "products.csv"]


# --- every protocol end to end -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol,sets", [
    ("tallrec", ["tallrec.history_len=5", "tallrec.few_shot=[16]"]),
    ("rella", []),
    ("trsr", ["trsr.min_interactions=10", "trsr.max_interactions=40", "trsr.eval_negatives=5", "trsr.n_test=5",
              "trsr.n_valid=5"]),
])
def test_every_protocol_prepares_audits_and_evaluates_a_tiny_csv(tmp_path, shop, protocol, sets, tiny_model_folder):
    cfg = config_file(tmp_path, protocol, shop)
    out = tmp_path / protocol
    text = run("data", "prepare", "-c", cfg, "-o", out, *[a for s in sets for a in ("--set", s)])
    assert f"files / {protocol}" in text
    audit = run("data", "audit", out)
    assert "every applicable promise holds" in audit
    prepared = PreparedData.load(out)
    assert prepared.dataset == "files" and prepared.config["files"]["interactions"]["path"] == "orders.csv"
    assert set(prepared.items.columns) == {"item", "title", "genres"}
    run("evaluate", "-d", out, "--limit", 4, "--model", tiny_model_folder, "--device", "cpu", "--run-dir",
        tmp_path / "run")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]


def test_experiment_step_key_follows_the_files_content(tmp_path, shop):
    from llmrec.experiments.steps import source_fingerprint

    cfg = PrepareConfig(dataset="files", protocol="rella", path=str(shop), files=settings()).model_dump(mode="json")
    before = source_fingerprint(cfg)
    with open(shop / "orders.csv", "a") as f:
        f.write("c1,p2,5,2001-01-01T00:00:00Z\n")
    assert source_fingerprint(cfg) != before != {"source": "not found yet"}
    (shop / "customers.csv").unlink()
    assert source_fingerprint(cfg) == {"source": "not found yet"}


def test_an_experiment_prepares_the_files_and_skips_them_when_unchanged(tmp_path, shop):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "own", "metrics": ["auc"], "steps": [
        {"name": "data", "prepare": {"dataset": "files", "protocol": "rella", "path": str(shop), "files": settings()}},
        {"name": "history-rate", "baseline": {"model": "history_rate", "data": "@data"}}]}))
    out = tmp_path / "out"
    run("run", exp, "--out", out)
    assert json.loads((out / "history-rate" / "seed-0" / "metrics.json").read_text())["metrics"]["auc"] > 0
    assert run("run", exp, "--out", out, "--dry-run").count("done") >= 2
    with open(shop / "products.csv", "a") as f:  # an edited export prepares again
        f.write("p999,New product,kitchen\n")
    assert "changed" in run("run", exp, "--out", out, "--dry-run")


def test_the_tutorial_data_script_and_config(tmp_path, monkeypatch):
    """examples/make_shop_data.py + examples/shop.yaml (docs/tutorials/your-data.md) prepare with every protocol."""
    spec = importlib.util.spec_from_file_location("make_shop_data", REPO / "examples" / "make_shop_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    counts = module.make_shop(tmp_path / "shop", customers=60, products=60)
    assert counts["customers"] == 60
    for protocol in ("rella", "tallrec", "trsr"):
        run("data", "prepare", "-c", REPO / "examples" / "shop.yaml", "-p", protocol, "-o", f"prepared/{protocol}",
            "--set", "trsr.n_test=5", "--set", "trsr.n_valid=5", "--set", "tallrec.few_shot=[16]")
        assert "every applicable promise holds" in run("data", "audit", f"prepared/{protocol}")
    items = PreparedData.load("prepared/rella").items
    assert {"category", "tags"} <= set(items.columns) and ", " in items["tags"].iloc[0]


# --- ML-1M as a shop's export -----------------------------------------------------------------------------------


def _strip_prefix(column: pa.ChunkedArray) -> pa.Array:
    column = column.combine_chunks()
    if pa.types.is_list(column.type):
        return pa.ListArray.from_arrays(column.offsets, pc.utf8_slice_codeunits(column.flatten(), 1))
    return pc.utf8_slice_codeunits(column, 1)


@pytest.mark.shared_data
def test_ml1m_reshaped_as_a_shop_export_gives_the_ml1m_rella_splits(tmp_path, shared_dataset):
    from llmrec.data.loaders.movielens import load_ml_1m
    from llmrec.data.protocols import RellaConfig, build_rella

    t0 = time.perf_counter()
    original = load_ml_1m(shared_dataset("movielens") / "ml-1m.zip")
    inter, items, users = original.interactions, original.items, original.users
    shop = tmp_path / "shop"
    shop.mkdir()
    # renamed and reordered columns, string ids, ISO 8601 times, an extra column, tags joined by "; "
    pacsv.write_csv(pa.table({"stars": inter["rating"].astype("int8"), "ordered_at": iso(inter["timestamp"]),
                               "customer_id": "u" + inter["user"], "channel": ["web"] * len(inter),
                               "product_id": "m" + inter["item"]}), shop / "orders.csv")
    write(pd.DataFrame({"product_id": "m" + items["item"], "name": items["title"],
                        "tags": items["genres"].str.replace(", ", "; ", regex=False)}), shop / "products.tsv")
    users.rename(columns={"user": "customer_id"}).assign(customer_id=lambda f: "u" + f["customer_id"]).to_parquet(
        shop / "customers.parquet")
    cfg = tmp_path / "my-data.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "files", "protocol": "rella", "path": str(shop), "files": {
        "interactions": {"path": "orders.csv", "columns": {"user": "customer_id", "item": "product_id",
                                                            "rating": "stars", "timestamp": "ordered_at"}},
        "items": {"path": "products.tsv", "columns": {"item": "product_id", "title": "name"},
                  "text": {"genres": "tags"}, "lists": ["genres"], "list_separator": ";"},
        "users": {"path": "customers.parquet", "columns": {"user": "customer_id"},
                  "profile": ["gender", "age", "occupation"]}}}))
    t1 = time.perf_counter()
    run("data", "prepare", "-c", cfg, "-o", tmp_path / "shop-rella")
    t2 = time.perf_counter()
    shop_rella = PreparedData.load(tmp_path / "shop-rella")
    counts = {name: shop_rella.num_rows(name) for name in ("train", "valid", "test")}
    assert counts == {"train": 776_007, "valid": 97_001, "test": 97_001} and sum(counts.values()) == 970_009
    reference = build_rella(original, RellaConfig())
    for name in ("train", "valid", "test"):  # the same samples, in the same order, modulo the id prefixes
        ours, theirs = shop_rella.split(name), reference.splits[name]
        assert ours.column_names == theirs.column_names
        for column in theirs.column_names:
            got = ours.column(column)
            got = _strip_prefix(got) if column in ("user", "item", "history_items") else got.combine_chunks()
            assert got.equals(theirs.column(column).combine_chunks()), (name, column)
    assert shop_rella.items["genres"].tolist() == items["genres"].tolist()
    profile = ["gender", "age", "occupation"]
    assert shop_rella.users[profile].values.tolist() == users[profile].values.tolist()
    print(f"\nML-1M as a shop: files written {t1 - t0:.1f} s, llmrec data prepare {t2 - t1:.1f} s, "
          f"compared {time.perf_counter() - t2:.1f} s")
