"""Resource planning: the memory and time of LoRA training, scoring and generation with a model on a device, before
anything loads (``llmrec plan``; a step's parts: :mod:`llmrec.planning.steps`; a config file or an experiment:
:mod:`llmrec.experiments.resources`).

>>> from llmrec.planning import DEVICES, KNOWN_SHAPES, train_estimate
>>> e = train_estimate(KNOWN_SHAPES["meta-llama/Llama-2-7b-hf"], DEVICES["a100-40gb"], "bfloat16", batch=4,
...                    max_tokens=300, mean_tokens=250, steps=1, lora_r=8, lora_targets=("q_proj", "v_proj"))
>>> e.fits, round(e.gib, 1)
(True, 17.9)
"""

from llmrec.planning.devices import DEVICES, EFFICIENCY, Device, cpu_device, custom, device_named, with_memory
from llmrec.planning.estimate import Estimate, generate_estimate, score_estimate, train_estimate
from llmrec.planning.shapes import KNOWN_SHAPES, ModelShape, model_shape

__all__ = ["DEVICES", "EFFICIENCY", "KNOWN_SHAPES", "Device", "Estimate", "ModelShape", "cpu_device", "custom",
           "device_named", "generate_estimate", "model_shape", "score_estimate", "train_estimate", "with_memory"]
