import json

import pandas as pd
import pytest
from pydantic import BaseModel

from llmrec.configfile import apply_overrides, dump_config, load_config
from llmrec.data.schema import RecData
from llmrec.errors import ConfigError, DataError
from llmrec.io import atomic_directory, atomic_path, write_json


class Inner(BaseModel):
    k: int = 5
    ks: list[int] = [1]


class Outer(BaseModel):
    name: str = "x"
    inner: Inner = Inner()


def test_overrides_parse_yaml_values_and_create_sections():
    assert apply_overrides({}, ["a.b.c=3", "a.d=[1, 2]", "e=true", "f="]) == {
        "a": {"b": {"c": 3}, "d": [1, 2]}, "e": True, "f": ""}
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: y\ninner:\n  k: 7\n")
    cfg = load_config(Outer, p, ["inner.ks=[3,4]"])
    assert (cfg.name, cfg.inner.k, cfg.inner.ks) == ("y", 7, [3, 4])
    assert load_config(Outer, overrides=[]).model_dump() == Outer().model_dump()
    again = tmp_path / "d.yaml"
    again.write_text(dump_config(cfg))
    assert load_config(Outer, again) == cfg


def test_config_errors_name_file_and_field(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("inner:\n  k: many\n")
    with pytest.raises(ConfigError, match=r"(?s)c\.yaml.*inner\.k"):
        load_config(Outer, p)
    p.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Outer, p)
    p.write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(Outer, p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "none.yaml")


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_atomic_directory_replaces_only_on_success(tmp_path):
    target = tmp_path / "run"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError
    assert (target / "a").read_text() == "1"
    with atomic_directory(target) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_schema_validation_errors():
    items = pd.DataFrame({"item": ["a"], "title": ["A"]})
    ok = pd.DataFrame({"user": [1], "item": ["a"], "rating": [4], "timestamp": [3]})
    data = RecData("t", ok, items, sources={"interactions": "r.csv", "items": "i.csv"}).validated()
    assert data.interactions["user"].tolist() == ["1"]
    with pytest.raises(DataError, match=r"r\.csv: field 'item'"):
        RecData("t", ok.drop(columns="item"), items, sources={"interactions": "r.csv"}).validated()
    with pytest.raises(DataError, match=r"i\.csv.*duplicate item"):
        RecData("t", ok, pd.concat([items, items]), sources={"items": "i.csv"}).validated()
    with pytest.raises(DataError, match="timestamp"):
        RecData("t", ok.drop(columns="timestamp"), items).validated()
    with pytest.raises(DataError, match="unknown user"):
        RecData("t", ok, items, users=pd.DataFrame({"user": ["2"]})).validated()
    with pytest.raises(DataError, match="no interactions"):
        RecData("t", ok.iloc[:0], items).validated()


def test_schema_roundtrip(tmp_path):
    items = pd.DataFrame({"item": ["a", "b"], "title": ["A", "B"]})
    inter = pd.DataFrame({"user": ["u", "u"], "item": ["b", "a"], "rating": [1.0, None], "timestamp": [2, 1]})
    data = RecData("t", inter, items).validated()
    data.save(tmp_path / "d")
    again = RecData.load(tmp_path / "d")
    pd.testing.assert_frame_equal(again.interactions, data.interactions)
    assert again.chronological()["item"].tolist() == ["a", "b"]
    (tmp_path / "d" / "meta.json").write_text("{broken")
    with pytest.raises(DataError, match="cannot read JSON"):
        RecData.load(tmp_path / "d")
