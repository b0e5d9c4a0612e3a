"""A short description of the machine, stored with every benchmark result."""

from __future__ import annotations

import resource
import sys

from llmrec.runs import machine_info

__all__ = ["machine_info", "peak_rss_mib"]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    On Linux the high-water mark of this process image (``VmHWM``): ``ru_maxrss`` keeps the peak of the process
    that forked it across ``exec``, so a worker started by a large parent (``llmrec bench retrieval`` after loading
    the model) would report the parent's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20
