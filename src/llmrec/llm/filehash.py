"""Content hashes of (large) weight files, read once per file version.

>>> import tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "w.bin"; _ = f.write_bytes(b"abc")
>>> content_sha256(f)[:12]
'ba7816bf8f01'
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from llmrec.io import file_sha256, write_text
from llmrec.paths import cache_dir


def content_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content, remembered per (resolved path, size, modification time): a 14 GB
    weight file is read once, then looked up (a read-only cache only costs the re-reading)."""
    path = Path(path).resolve()
    st = path.stat()
    stamp = hashlib.sha256(json.dumps([str(path), st.st_size, st.st_mtime_ns]).encode()).hexdigest()[:32]
    memo = cache_dir() / "hashes" / f"{stamp}.sha256"
    try:
        known = memo.read_text().strip()
        if len(known) == 64:
            return known
    except OSError:
        pass
    digest = file_sha256(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_text(memo, digest)
    except OSError:
        pass
    return digest
