"""LoRA instruction tuning with TRL (TALLRec; ReLLa's ReiT and TRSR build on it).

>>> from llmrec.train import TrainConfig
>>> TrainConfig(data="prepared/ml-100k-tallrec").optim.loss
'answer_only'
"""

from llmrec.train.adapters import LoraSettings
from llmrec.train.config import InstructionStage, OptimSettings, SelectionSettings, TestSettings, TrainConfig
from llmrec.train.run import train, train_seeds

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
