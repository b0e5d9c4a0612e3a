"""Download an official archive into the cache and verify its published checksum.

Downloads go to a temporary file first and are renamed into place only after the checksum
matches, so a cut connection never leaves a half archive in the cache.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from llmrec.errors import DataError
from llmrec.io import atomic_path, file_md5
from llmrec.paths import cache_dir


def download_archive(url: str, md5: str | None = None, dest_dir: Path | None = None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``dest_dir`` (default: the download cache) unless already there.

    A cached file whose checksum does not match is downloaded again; a fresh download whose
    checksum does not match raises :class:`DataError` and is discarded.
    """
    dest_dir = dest_dir or cache_dir() / "downloads"
    target = dest_dir / url.rsplit("/", 1)[-1]
    if target.exists() and (md5 is None or file_md5(target) == md5):
        return target
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(target) as tmp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
            if md5 is not None and (got := file_md5(tmp)) != md5:
                raise DataError(f"checksum mismatch: md5 {got}, expected {md5}", path=url)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"download failed: {exc}", path=url, hint="download it by hand and pass --path") from exc
    return target
