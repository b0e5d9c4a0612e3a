"""Devices a plan targets: memory, peak dense matmul rates by dtype, memory bandwidth.

Peak rates are the vendors' dense (no sparsity) tensor-core figures for 16-bit types and the plain float32 rate
(NVIDIA H100 / H200 / A100 / L4 / RTX 4090 datasheets); a plan runs at a stated fraction of them
(:data:`EFFICIENCY`). ``cpu`` is this machine: its RAM, and a float32 matmul rate measured in a fraction of a
second (the same product ``llmrec bench retrieval`` reports as ``matmul_peak_gflops``).

>>> d = DEVICES["h100"]
>>> d.memory_gib, d.tflops("bfloat16"), d.tflops("float32")
(80.0, 989.0, 67.0)
>>> custom(memory_gib=48, tflops=181).tflops("bfloat16")
181.0
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

from llmrec.errors import ConfigError

__all__ = ["DEVICES", "EFFICIENCY", "Device", "cpu_device", "custom", "device_named"]


@dataclass(frozen=True)
class Device:
    name: str
    memory_gib: float
    bf16_tflops: float  # dense 16-bit matmul peak (bfloat16 / float16)
    fp32_tflops: float
    bandwidth_gbs: float  # memory bandwidth, GB/s: decoding one token reads every weight once
    kind: str = "gpu"  # gpu or cpu
    overhead_gib: float = 0.6  # what the framework holds besides the model (CUDA context and allocator; Python,
    # torch and transformers on a CPU)
    activation_factor: float = 1.0  # resident memory per byte autograd keeps: on a CPU the allocator holds the
    # forward's freed intermediates too (measured: 1.9x, BENCHMARKS.md, planner check)

    def tflops(self, dtype: str) -> float:
        """Peak matmul rate for weights of ``dtype`` (int8 weights are dequantized: the 16-bit rate)."""
        return self.fp32_tflops if dtype == "float32" else self.bf16_tflops


DEVICES: dict[str, Device] = {d.name: d for d in [
    Device("h100", 80.0, 989.0, 67.0, 3350.0),            # H100 SXM 80 GB
    Device("h200", 141.0, 989.0, 67.0, 4800.0),
    Device("a100-80gb", 80.0, 312.0, 19.5, 2039.0),
    Device("a100-40gb", 40.0, 312.0, 19.5, 1555.0),
    Device("l4", 24.0, 121.0, 30.3, 300.0),
    Device("rtx4090", 24.0, 165.2, 82.6, 1008.0),
]}

# Fraction of the peak a phase reaches (model FLOPs utilisation). GPU figures: what LoRA fine-tuning and batched
# prefill of 7-13B models commonly reach in bfloat16 with PyTorch (see docs/plan.md for sources); CPU figures:
# measured on the 2-core machine of BENCHMARKS.md against the matmul rate measured just before (``llmrec bench
# plan``: 200 TALLRec prompts scored at ~85% of it, LoRA steps of 8 prompts at ~55%).
EFFICIENCY: dict[tuple[str, str], float] = {
    ("gpu", "train"): 0.35, ("gpu", "score"): 0.45, ("gpu", "prefill"): 0.45,
    ("cpu", "train"): 0.55, ("cpu", "score"): 0.85, ("cpu", "prefill"): 0.85,
}


def custom(memory_gib: float, tflops: float, bandwidth_gbs: float = 1000.0, name: str = "custom") -> Device:
    """A device given by its memory and 16-bit peak (``--memory``, ``--tflops``); float32 at 1/2 of it."""
    return Device(name, float(memory_gib), float(tflops), float(tflops) / 2, bandwidth_gbs)


def _cpu_memory_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) / 2**30


def measured_matmul_gflops(hidden: int = 640, inner: int = 2048, rows: int = 4096, repeats: int = 20) -> float:
    """This machine's float32 matrix-product rate (GFLOP/s) with the threads torch uses, on a rows x hidden by
    hidden x inner product (default: the default model's MLP shape): the ceiling of a decoder's throughput."""
    import torch

    a, b = torch.randn(rows, hidden), torch.randn(hidden, inner)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * rows * hidden * inner * repeats / (time.perf_counter() - t0) / 1e9


def cpu_device(gflops: float | None = None) -> Device:
    """This machine: its RAM and measured float32 matmul rate (bfloat16 on a CPU runs far slower: 1/50 of it)."""
    rate = (gflops if gflops is not None else measured_matmul_gflops()) / 1000
    return Device("cpu", round(_cpu_memory_gib(), 1), rate / 50, rate, 10.0, kind="cpu", overhead_gib=0.55,
                  activation_factor=1.9)


def device_named(name: str) -> Device:
    """A device of :data:`DEVICES`, or ``cpu`` (measured here)."""
    key = name.lower().replace(" ", "").replace("_", "-")
    key = {"h100-80gb": "h100", "h100-sxm": "h100", "a100": "a100-80gb", "4090": "rtx4090"}.get(key, key)
    if key == "cpu":
        return cpu_device()
    if key not in DEVICES:
        raise ConfigError(f"--gpu {name}: not a device a plan knows ({', '.join([*DEVICES, 'cpu'])}); give "
                          "--memory GIB and --tflops TFLOPS instead")
    return DEVICES[key]


def with_memory(device: Device, memory_gib: float | None, tflops: float | None) -> Device:
    """``device`` with ``--memory`` / ``--tflops`` overriding its figures."""
    out = device
    if memory_gib is not None:
        out = replace(out, memory_gib=float(memory_gib))
    if tflops is not None and out.kind == "cpu":  # a CPU's figure is its float32 rate
        out = replace(out, fp32_tflops=float(tflops), bf16_tflops=float(tflops) / 50)
    elif tflops is not None:
        out = replace(out, bf16_tflops=float(tflops), fp32_tflops=float(tflops) / 2)
    return out
