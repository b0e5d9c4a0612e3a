"""llmrec: turn a causal language model into a recommender.

The package is organised as a one-way pipeline (see ``docs/architecture.md``)::

    datasets -> samples -> prompts -> (retrieve | summarize) -> model -> metrics -> report

>>> import llmrec
>>> isinstance(llmrec.__version__, str)
True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmrec")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
