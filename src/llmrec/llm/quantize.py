"""A faster CPU path: int8 dynamic quantization of the decoder's linear layers.

Weights are stored as int8 (per output channel) and activations are quantized on the fly
(``torch.ao.quantization.quantize_dynamic``; torch >= 2.x CPU kernels via fbgemm/onednn).
The embedding / LM head is left in float32: the engine only uses its two answer rows.
Measure the AUC change on your prompts (``llmrec bench scoring --int8``) before relying on it.
"""

from __future__ import annotations

import copy
import warnings


def quantize_int8(model, skip: tuple[str, ...] = ("lm_head",)):
    """A copy of ``model`` with every ``nn.Linear`` outside ``skip`` quantized to int8."""
    import torch

    qmodel = copy.deepcopy(model)
    targets = {name for name, mod in qmodel.named_modules()
               if isinstance(mod, torch.nn.Linear) and not any(s in name for s in skip)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice in favour of torchao
        return torch.ao.quantization.quantize_dynamic(qmodel, targets, dtype=torch.qint8)
