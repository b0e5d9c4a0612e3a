"""A short description of the machine, stored with every benchmark result."""

from __future__ import annotations

import resource
import sys

from llmrec.runs import machine_info

__all__ = ["machine_info", "peak_rss_mib"]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20
