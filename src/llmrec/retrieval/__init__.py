"""Semantic user behaviour retrieval (ReLLa's SUBR) as a transform of a prepared folder.

``retrieve(RetrievalConfig(data=..., out=..., k=10))`` encodes every item once (cached),
then writes a prepared folder of the same schema whose histories are the K earlier items
most similar to each target. See :mod:`llmrec.retrieval.transform`.
"""

from llmrec.retrieval.config import EncoderSettings, RetrievalConfig
from llmrec.retrieval.encode import ItemVectors, encode_items, item_texts, project
from llmrec.retrieval.subr import Retrieved, subr_fast, subr_reference
from llmrec.retrieval.transform import retrieve

__all__ = ["EncoderSettings", "ItemVectors", "Retrieved", "RetrievalConfig", "encode_items", "item_texts", "project",
           "retrieve", "subr_fast", "subr_reference"]
