"""Generated summaries cached by content: an append-only journal per (model, generation settings).

A summary is looked up by the SHA-256 of its whole prompt text (the template, the item texts
of the block or the summaries below it: the history text and the prompt), inside a folder
keyed by the model's fingerprint, the generation settings and the chat wrapping. Every batch of
new summaries is appended to ``journal.jsonl`` and flushed to disk, so a run killed at any
moment (kill -9 included) loses at most the batch in flight; a torn last line is dropped when
the journal is opened again.

>>> import tempfile, pathlib
>>> cache = SummaryCache(pathlib.Path(tempfile.mkdtemp()), {"model": "m"})
>>> cache.put([("prompt A", "likes racing games")])
>>> SummaryCache(cache.folder, {"model": "m"}).get("prompt A")
'likes racing games'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llmrec.io import write_json
from llmrec.paths import cache_dir


def digest(obj: Any) -> str:
    """SHA-256 (hex) of a JSON-serializable value or a string."""
    text = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def summary_cache_folder(key: dict[str, Any]) -> Path:
    """``<cache>/summaries/<hash of key>``."""
    return cache_dir() / "summaries" / digest(key)[:24]


class SummaryCache:
    """Prompt text -> generated summary, persisted as a JSON-lines journal (see the module docstring)."""

    def __init__(self, folder: Path, key: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.key = key
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / "key.json").exists():
            write_json(self.folder / "key.json", key)
        self.path = self.folder / "journal.jsonl"
        self._texts: dict[str, str] = {}
        self._repair_and_read()

    @classmethod
    def for_key(cls, key: dict[str, Any]) -> SummaryCache:
        return cls(summary_cache_folder(key), key)

    def __len__(self) -> int:
        return len(self._texts)

    def _repair_and_read(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a write cut short by a kill: drop the torn tail
            with open(self.path, "r+b") as f:
                f.truncate(end)
            data = data[:end]
        for line in data.splitlines():
            try:
                rec = json.loads(line)
                self._texts[rec["k"]] = rec["t"]
            except (ValueError, KeyError, TypeError):
                continue

    def get(self, prompt: str) -> str | None:
        return self._texts.get(digest(prompt))

    def put(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Append (prompt, summary) pairs and flush them to disk."""
        lines = []
        for prompt, text in pairs:
            k = digest(prompt)
            self._texts[k] = text
            lines.append(json.dumps({"k": k, "t": text}, ensure_ascii=False) + "\n")
        if not lines:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
