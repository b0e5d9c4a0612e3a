"""``llmrec serve``: an HTTP API that scores or ranks candidate items for a user history.

Same model, adapter, template and item texts as offline evaluation (a served score equals
``llmrec evaluate``'s for the same input), micro-batching of concurrent requests, prefix reuse
across a request's candidates. Needs ``pip install 'llmrec[serve]'`` (FastAPI + uvicorn).

>>> from llmrec.serve import ServeConfig
>>> ServeConfig(data="prepared/ml-100k-tallrec").server.host
'127.0.0.1'
"""

from llmrec.serve.config import ServeConfig, ServerSettings, check_run_data, settings_from_run

__all__ = ["ServeConfig", "ServerSettings", "check_run_data", "settings_from_run"]
