"""Resource planning: the memory and time a step needs on a device, before it runs (``llmrec plan``).

>>> from llmrec.planning import DEVICES, KNOWN_SHAPES, train_estimate
>>> e = train_estimate(KNOWN_SHAPES["meta-llama/Llama-2-7b-hf"], DEVICES["a100-40gb"], "bfloat16", batch=4,
...                    max_tokens=300, mean_tokens=250, steps=1, lora_r=8, lora_targets=("q_proj", "v_proj"))
>>> e.fits, round(e.gib, 1)
(True, 17.9)
"""

from llmrec.planning.devices import DEVICES, EFFICIENCY, Device, cpu_device, custom, device_named, with_memory
from llmrec.planning.estimate import Estimate, generate_estimate, score_estimate, train_estimate
from llmrec.planning.plan import PlanRow, fit_advice, plan_config, plan_file, totals
from llmrec.planning.shapes import KNOWN_SHAPES, ModelShape, model_shape

__all__ = ["DEVICES", "EFFICIENCY", "KNOWN_SHAPES", "Device", "Estimate", "ModelShape", "PlanRow", "cpu_device",
           "custom", "device_named", "fit_advice", "generate_estimate", "model_shape", "plan_config", "plan_file",
           "score_estimate", "totals", "train_estimate", "with_memory"]
