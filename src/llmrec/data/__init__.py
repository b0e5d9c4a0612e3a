"""Data layer: loaders into one schema, protocol builders and statistics.

>>> from llmrec.data import DATASETS
>>> "ml-1m" in DATASETS
True
"""

from llmrec.data.registry import DATASETS, DatasetSpec, load_dataset, resolve_source
from llmrec.data.schema import RecData

__all__ = ["DATASETS", "DatasetSpec", "RecData", "load_dataset", "resolve_source"]
