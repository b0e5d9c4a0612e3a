"""Where llmrec keeps its caches (models, downloads, encodings): one place for every layer.

>>> import os
>>> os.environ["LLMREC_CACHE"] = "/tmp/llmrec-cache-doc"
>>> str(cache_dir())
'/tmp/llmrec-cache-doc'
>>> del os.environ["LLMREC_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$LLMREC_CACHE`` or ``~/.cache/llmrec``."""
    return Path(os.environ.get("LLMREC_CACHE", Path.home() / ".cache" / "llmrec"))
