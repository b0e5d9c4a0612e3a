"""The HTTP API of ``llmrec serve`` (FastAPI; OpenAPI page at ``/docs``, schema at ``/openapi.json``; needs
``pip install 'llmrec[serve]'``).

Endpoints: ``POST /v1/score`` (a score per candidate, request order: P(yes) of a language model), ``POST /v1/rank``
(candidates by score, optional ``top_k``), ``GET /health``, ``GET /metrics``. Errors are one
JSON object ``{"error": "...", "field": "..."}``: 400 malformed JSON (or an undecodable body), 401 missing or wrong
``X-API-Key`` (when a key is set), 413 body over ``max_body_bytes``, 422 a body the service cannot
score (unknown item, empty history, too many candidates, wrong types), 503 shutting down.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import Counter, deque
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from llmrec import __version__
from llmrec.serve.batcher import MicroBatcher, ShuttingDown
from llmrec.serve.schemas import RankResponse, ScoreRequest, ScoreResponse
from llmrec.serve.service import InvalidRequest, RecommenderService

__all__ = ["EXIT_MARGIN_S", "create_app", "make_server", "serve"]

EXIT_MARGIN_S = 5.0  # uvicorn's own deadline comes this long after the grace period: a backstop, never reached

_ERROR_SCHEMA = {"type": "object", "required": ["error", "field"], "additionalProperties": False,
                 "properties": {"error": {"type": "string", "description": "what is wrong, in one line"},
                                "field": {"anyOf": [{"type": "string"}, {"type": "null"}],
                                          "description": "the offending part of the request, if one"}}}
_ERROR = {"content": {"application/json": {"schema": _ERROR_SCHEMA,
                                           "example": {"error": "unknown item 'x' (not in ...)",
                                                       "field": "candidates[0]"}}}}
_RESPONSES = {400: _ERROR, 401: _ERROR, 413: _ERROR, 422: _ERROR, 503: _ERROR}


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


class _BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes (declared or streamed), before any parsing."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = _error(413, f"request body over {self.limit} bytes")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await too_big(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooBig
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooBig:
            await too_big(scope, receive, send)


class _TooBig(Exception):
    pass


class _Metrics:
    """Request counts by endpoint and status, and latencies of the recent requests."""

    def __init__(self, window: int = 10_000):
        self.started = time.time()
        self.counts: Counter = Counter()
        self.latency: dict[str, deque] = {}
        self.window = window

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        self.counts[(endpoint, status)] += 1
        self.latency.setdefault(endpoint, deque(maxlen=self.window)).append(seconds)

    def snapshot(self) -> dict[str, Any]:
        lat = {}
        for endpoint, values in self.latency.items():
            v = np.asarray(values) * 1000
            lat[endpoint] = {"n": len(v), "p50_ms": round(float(np.percentile(v, 50)), 2),
                             "p90_ms": round(float(np.percentile(v, 90)), 2),
                             "p99_ms": round(float(np.percentile(v, 99)), 2)}
        requests = [{"endpoint": e, "status": s, "count": n} for (e, s), n in sorted(self.counts.items())]
        return {"uptime_s": round(time.time() - self.started, 1), "requests": requests, "latency": lat}


def create_app(service: RecommenderService) -> FastAPI:
    """The FastAPI app serving ``service`` (run it with uvicorn, or test it with a TestClient)."""
    limits = service.limits
    stop = getattr(service.model, "stop", None)  # ends a scoring call under way at its next batch
    batcher = MicroBatcher(service.model.score, max_batch_prompts=service.prompts_per_call(),
                           max_wait_s=limits.max_wait_ms / 1000, enabled=limits.micro_batching,
                           admission=limits.admission,
                           on_abort=stop.set if stop is not None else None)
    metrics = _Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.close()  # after uvicorn stopped accepting: finish what is queued

    app = FastAPI(title="llmrec", version=__version__, lifespan=lifespan,
                  description="Scores candidate items for a user history with "
                              f"{service.describe['model']} (data {service.describe['data']}).")
    app.add_middleware(_BodyLimit, limit=limits.max_body_bytes)
    app.state.service, app.state.batcher, app.state.metrics = service, batcher, metrics

    def require_key(request: Request) -> None:
        if limits.api_key is None:
            return
        given = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), limits.api_key.encode()):
            raise _Unauthorized

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, f"malformed JSON: {first.get('ctx', {}).get('error', first['msg'])}")
        return _error(422, first["msg"], field)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException):
        """FastAPI's own errors ({"detail": ...}: a body it cannot parse, 404, 405) in the one error shape."""
        cause = exc.__cause__
        message = str(exc.detail)
        if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
            message = f"malformed JSON: not UTF-8 text (byte 0x{cause.object[cause.start]:02x} at {cause.start})"
        elif exc.status_code == 400 and isinstance(cause, RecursionError):
            message = "malformed JSON: nested too deeply"
        elif exc.status_code == 400 and cause is not None:
            message = f"malformed JSON: {cause}"
        response = _error(exc.status_code, message)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(InvalidRequest)
    async def on_bad_request(request: Request, exc: InvalidRequest):
        return _error(422, str(exc), exc.field)

    @app.exception_handler(ShuttingDown)
    async def on_shutdown(request: Request, exc: ShuttingDown):
        return _error(503, str(exc))

    @app.exception_handler(_Unauthorized)
    async def on_unauthorized(request: Request, exc: Exception):
        return _error(401, "missing or wrong X-API-Key header")

    @app.middleware("http")
    async def count(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        metrics.record(request.url.path, response.status_code, time.perf_counter() - t0)
        return response

    async def scores_of(req: ScoreRequest):
        built = await run_in_threadpool(service.build, req)
        return built, await batcher.submit(built.units)

    @app.post("/v1/score", response_model=ScoreResponse, responses=_RESPONSES, dependencies=[Depends(require_key)],
              summary="P(yes) of every candidate for a user history")
    async def score(req: ScoreRequest) -> ScoreResponse:
        built, scores = await scores_of(req)
        return service.score_response(built, scores)

    @app.post("/v1/rank", response_model=RankResponse, responses=_RESPONSES, dependencies=[Depends(require_key)],
              summary="The candidates ordered by score")
    async def rank(req: ScoreRequest, top_k: int | None = Query(None, ge=1, description="return the best k only")
                   ) -> RankResponse:
        built, scores = await scores_of(req)
        return service.rank_response(built, scores, top_k)

    @app.get("/health", summary="Liveness and what is loaded")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, **service.describe}

    @app.get("/metrics", dependencies=[Depends(require_key)], summary="Request counts, latencies, batching")
    async def get_metrics() -> dict[str, Any]:
        return {**metrics.snapshot(), "batcher": batcher.stats()}

    return app


class _Unauthorized(Exception):
    pass


def make_server(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000, graceful_timeout_s: float = 30.0,
                log_level: str = "warning"):
    """A uvicorn server for ``app`` whose shutdown (SIGTERM, Ctrl-C, ``should_exit``) is bounded: it stops
    accepting connections and closes idle ones (a request that reaches the app meanwhile is answered 503), lets
    the requests in flight finish for
    ``graceful_timeout_s``, then answers the rest 503 (``{"error": ..., "field": null}``) and stops the scoring
    call under way after its current batch; the process exits within ``graceful_timeout_s`` plus the scoring of
    one batch (``scoring.batch_size`` prompts) and about a second."""
    import uvicorn

    batcher: MicroBatcher = app.state.batcher

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            drain = asyncio.ensure_future(batcher.drain(graceful_timeout_s))  # the app's own deadline
            try:
                await super().shutdown(sockets)
            finally:
                if not drain.done():
                    drain.cancel()

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=graceful_timeout_s + EXIT_MARGIN_S)
    return _Server(config)


def serve(app: FastAPI, *, host: str, port: int, graceful_timeout_s: float, log_level: str = "warning") -> None:
    """Run ``app`` until SIGTERM / Ctrl-C, then shut down as :func:`make_server` says (``llmrec serve``)."""
    make_server(app, host=host, port=port, graceful_timeout_s=graceful_timeout_s, log_level=log_level).run()
