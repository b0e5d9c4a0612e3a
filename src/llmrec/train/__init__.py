"""LoRA instruction tuning with TRL (TALLRec; ReLLa's ReiT and TRSR build on it).

The configs import light; ``train`` / ``train_seeds`` bring in torch, transformers and TRL
on first use, so a bad argument is reported before those load.

>>> from llmrec.train import TrainConfig
>>> TrainConfig(data="prepared/ml-100k-tallrec").optim.loss
'answer_only'
"""

from llmrec.train.adapters import LoraSettings
from llmrec.train.config import InstructionStage, OptimSettings, SelectionSettings, TestSettings, TrainConfig

__all__ = [
    "InstructionStage",
    "LoraSettings",
    "OptimSettings",
    "SelectionSettings",
    "TestSettings",
    "TrainConfig",
    "train",
    "train_seeds",
]


def __getattr__(name: str):
    if name in ("train", "train_seeds"):
        from llmrec.train import run  # not `import llmrec.train.run as run`: llmrec.train is the function

        return getattr(run, name)
    raise AttributeError(f"module 'llmrec.train' has no attribute {name!r}")
