"""Import TALLRec's released splits (JSON lists of ``{instruction, input, output}``).

The TALLRec authors released their movie and book samples as ``train.json``,
``valid.json`` and ``test.json``: each record holds the Alpaca ``instruction``, the
``input`` (the user's liked / disliked titles and the question) and the ``output``
(``"Yes."`` or ``"No."``). :func:`import_tallrec` turns them into a prepared folder of the
``instruction`` protocol (columns ``sample_id``, ``instruction``, ``input``, ``output``,
``label``) that ``llmrec train`` and ``llmrec evaluate`` read like any other; prompts are
rendered with the shipped ``alpaca`` template, exactly the paper's format.

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "test.json").write_text(json.dumps([{"instruction": "Q?", "input": "x", "output": "Yes."},
...                                              {"instruction": "Q?", "input": "y", "output": "No."}]))
>>> prepared = import_tallrec([str(d / "test.json")], name="tallrec-movie")
>>> prepared.splits["test"]["label"].to_pylist(), prepared.protocol
([1, 0], 'instruction')
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from llmrec.data.prepared import PreparedData
from llmrec.errors import DataError

SPLIT_FILES = ("train", "valid", "test")


def parse_sources(sources: Sequence[str]) -> dict[str, Path]:
    """``FILE`` (split = file stem), ``SPLIT=FILE``, or a folder holding train/valid/test.json."""
    out: dict[str, Path] = {}
    for src in sources:
        if "=" in src and not Path(src).exists():
            split, file = src.split("=", 1)
            out[split.strip()] = Path(file)
            continue
        path = Path(src)
        if path.is_dir():
            found = {s: path / f"{s}.json" for s in SPLIT_FILES if (path / f"{s}.json").exists()}
            if not found:
                raise DataError("no train.json / valid.json / test.json in this folder", path=path)
            out.update(found)
        else:
            out[path.stem] = path
    for split, path in out.items():
        if not path.exists():
            raise DataError(f"file of split {split!r} not found", path=path)
    return out


def read_release_file(path: Path) -> pa.Table:
    """One split: records -> (sample_id, instruction, input, output, label) with label = output says yes."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); JSON files must "
                        "be UTF-8: re-encode it, e.g. iconv -f latin1 -t utf-8", path=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(data, list) or not data:
        raise DataError("expected a non-empty JSON list of {instruction, input, output} records", path=path)
    rows = []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DataError(f"record {i} is not an object", path=path)
        for key in ("instruction", "input", "output"):
            if not isinstance(rec.get(key), str):
                raise DataError(f"record {i} has no {key!r} text", path=path, field=key)
        answer = rec["output"].strip().lower().rstrip(".!").strip()
        if answer not in ("yes", "no"):
            raise DataError(f"record {i}: output {rec['output']!r} is neither Yes nor No", path=path, field="output")
        rows.append({"sample_id": i, "instruction": rec["instruction"], "input": rec["input"],
                     "output": rec["output"], "label": int(answer == "yes")})
    return pa.Table.from_pylist(rows, schema=pa.schema([("sample_id", pa.int64()), ("instruction", pa.string()),
                                                        ("input", pa.string()), ("output", pa.string()),
                                                        ("label", pa.int8())]))


def import_tallrec(sources: Sequence[str], name: str = "tallrec-release") -> PreparedData:
    """A prepared ``instruction`` data set from TALLRec release files (see the module docstring)."""
    files = parse_sources(sources)
    splits = {split: read_release_file(path) for split, path in files.items()}
    order = [s for s in SPLIT_FILES if s in splits] + [s for s in splits if s not in SPLIT_FILES]
    return PreparedData(
        dataset=name, protocol="instruction", splits={s: splits[s] for s in order},
        items=pd.DataFrame({"item": pd.Series(dtype=str), "title": pd.Series(dtype=str)}),
        users=pd.DataFrame({"user": pd.Series(dtype=str)}), sequences=None,
        config={"source": {s: str(p) for s, p in files.items()}, "format": "tallrec-release"},
        notes=["imported from TALLRec's released JSON (instruction/input/output); label = output is 'Yes.'"],
    )
