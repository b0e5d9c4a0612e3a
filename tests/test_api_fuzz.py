"""The HTTP API of ``llmrec serve`` fuzzed from its own OpenAPI schema (schemathesis), and with near-valid bodies.

A tiny random model serves a tiny prepared folder through the ASGI app (in process, no port). Every answer:
no 5xx; a status the schema documents; a body that matches the schema it documents for that status; every
4xx the error shape ``{"error": "<message>", "field": <str or null>}``. Bounded: a fixed number of cases per
operation (the ``ci`` hypothesis profile of tests/conftest.py makes them the same on every run), a few
seconds in all.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter

import pytest

pytest.importorskip("fastapi")
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

QUIET = {"log": lambda m: None}
MAX_CANDIDATES = 8


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny model serving a tiny TALLRec folder (the service), and the folder's item ids. Each test makes its
    own app of it: an app's micro-batcher lives for one lifespan."""
    from llmrec.data.prepare import PrepareConfig, prepare
    from llmrec.data.prepared import PreparedData
    from llmrec.serve import ServeConfig
    from llmrec.serve.service import RecommenderService
    from tests.conftest import random_ratings, write_ml1m_zip
    from tests.tiny_models import tiny_loaded

    tmp = tmp_path_factory.mktemp("fuzz")
    zip_path = write_ml1m_zip(tmp / "ml-1m.zip", random_ratings(20, 40, (8, 20)))
    folder = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(zip_path), out=str(tmp / "tallrec"),
                                   tallrec={"history_len": 5, "max_samples": 100}), **QUIET)[1]
    cfg = ServeConfig(data=str(folder), server={"max_candidates": MAX_CANDIDATES, "max_history": 20,
                                                "max_body_bytes": 4096})
    service = RecommenderService.load(cfg, loaded=tiny_loaded("llama"), **QUIET)
    return service, PreparedData.load(folder).items["item"].astype(str).tolist()


@pytest.fixture
def api_schema(served):
    """The app's OpenAPI schema, loaded by schemathesis from the app itself (ASGI, in process)."""
    from llmrec.serve.app import create_app

    app = create_app(served[0])
    # a schema-violating body is rightly refused with the documented 400 / 413 / 422
    config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {
        "expected-statuses": ["400", "413", "422"]}}})
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    try:  # schemathesis keeps an ASGI app's lifespan running for the process: stop its batcher now
        from schemathesis.python.asgi import shutdown_lifespans

        shutdown_lifespans()
    except ImportError:
        pass


def _error_shape(response) -> str | None:
    """What is wrong with a 4xx body, or None when it is ``{"error": "<non-empty>", "field": <str or null>}``."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"error", "field"}:
        return f"not the error shape: {body!r:.300}"
    if not isinstance(body["error"], str) or not body["error"].strip():
        return f"no message: {body!r:.300}"
    if body["field"] is not None and not isinstance(body["field"], str):
        return f"field is neither a string nor null: {body!r:.300}"
    return None


def error_shape(ctx, response, case):
    """schemathesis check: every 4xx answers the documented error shape."""
    if 400 <= response.status_code < 500:
        problem = _error_shape(response)
        if problem:
            raise AssertionError(f"{case.method} {case.path} -> {response.status_code}: {problem}")
    return None


def test_api_answers_every_generated_request_as_documented(api_schema):
    """Positive and negative cases of every operation, drawn from the schema: no 5xx, documented statuses, content
    types and bodies, schema violations rejected, and the error shape on every 4xx. Not checked:
    ``positive_data_acceptance`` (a body valid by the schema names random item ids, which the service rightly
    refuses with a 422). (``schemathesis.pytest.from_fixture`` does not run under pytest 9: the cases are drawn
    with the schema's hypothesis strategies instead.)"""
    from schemathesis import GenerationMode
    from schemathesis.checks import CHECKS

    excluded = CHECKS.get_by_names(["positive_data_acceptance"])
    started, seen = time.monotonic(), []

    @settings(max_examples=150, suppress_health_check=list(HealthCheck))
    @given(st.one_of(api_schema.as_strategy(GenerationMode.POSITIVE), api_schema.as_strategy(GenerationMode.NEGATIVE)))
    def check(case):
        response = case.call_and_validate(additional_checks=[error_shape], excluded_checks=excluded)
        seen.append((case.method, case.path, response.status_code))


    check()
    print(f"statuses: {dict(Counter(s for _, _, s in seen))}")
    assert {p for _, p, _ in seen} == {"/v1/score", "/v1/rank", "/health", "/metrics"}  # every operation was fuzzed
    assert time.monotonic() - started < 90  # bounded: a hang or a slow path fails here


# ------------------------------------------------------------------ near-valid bodies (known items, odd values)

odd_numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.none(),
                        st.sampled_from([0, 1, 5, 99, -1, 1e308, 2**63]))
odd_strings = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "\x00", "é", "\ud7ff", "1.0", "01"]))


@st.composite
def near_valid_body(draw, items):
    """A score request over the catalogue's ids: mostly valid (so that many reach the model), with now and then an
    unknown id, an odd rating, a missing or retyped key, an extra key. The choices come from a seeded
    ``random.Random`` (hypothesis picks the seed): uniform, where hypothesis's own draws lean to the edges."""
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))

    def pick(valid, odd, odds: int = 20):  # the odd value one time in ``odds``
        return draw(odd) if rnd.random() < 1 / odds else valid

    def entry():
        e = {"item": pick(rnd.choice(items), odd_strings), "rating": pick(rnd.randint(1, 5), odd_numbers)}
        if rnd.random() < 1 / 40:
            e.pop(rnd.choice(["item", "rating"]))
        return e

    n_candidates = rnd.randint(1, MAX_CANDIDATES) if rnd.random() < 0.9 else rnd.randint(0, MAX_CANDIDATES + 2)
    body = {"history": [entry() for _ in range(rnd.randint(1, 6) if rnd.random() < 0.9 else 0)],
            "candidates": [pick(rnd.choice(items), odd_strings, 40) for _ in range(n_candidates)]}
    if rnd.random() < 0.5:
        body["user"] = pick(rnd.choice(["1", "2", "unknown"]), st.one_of(odd_strings, st.integers(), st.none()))
    if rnd.random() < 0.5:
        body["summary"] = draw(st.one_of(odd_strings, st.none()))
    if rnd.random() < 1 / 8:  # bytes that are not a request at all
        return draw(raw_bodies)
    mutation = rnd.randint(0, 19)
    if mutation == 0:
        body.pop(rnd.choice(sorted(body)))
    elif mutation == 1:
        body[rnd.choice(sorted(body))] = draw(st.one_of(st.integers(), st.text(max_size=5), st.none(),
                                                        st.lists(st.integers(), max_size=2)))
    elif mutation == 2:
        body[draw(odd_strings)] = 1
    return body


def _dumps(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode()  # NaN / Infinity as Python's json writes them


raw_bodies = st.sampled_from([
    b"", b"{", b"[]", b"null", b"1", b'"x"', b"\xff\xfe\x00", b'{"history": "\xc3\x28"}', b"[" * 3000,
    b'{"history": [], "candidates": []}', b'{"history": [{"item": 1}], "candidates": [1]}',
    b'{"a": 1, "a": 2}', b'{"history": [{"item": "1", "rating": NaN}], "candidates": ["1"]}',
])


def test_near_valid_and_malformed_bodies_get_a_score_or_one_clear_4xx(served):
    """Bodies built from the catalogue's ids (so many reach the model) plus malformed bytes: a 200 whose scores
    are probabilities in request order, or a 4xx with the error shape; never a 5xx."""
    from starlette.testclient import TestClient

    from llmrec.serve.app import create_app

    service, items = served
    app = create_app(service)
    started, statuses = time.monotonic(), Counter()
    with TestClient(app) as client:
        @settings(max_examples=120, suppress_health_check=list(HealthCheck))
        @given(near_valid_body(items).map(lambda b: b if isinstance(b, bytes) else _dumps(b)),
               st.sampled_from(["/v1/score"] * 3 + ["/v1/rank"] * 2 + ["/v1/rank?top_k=2", "/v1/rank?top_k=0",
                                                                      "/v1/rank?top_k=x"]),
               st.sampled_from(["application/json"] * 6 + ["text/plain", None]))
        def check(content, path, content_type):
            headers = {"content-type": content_type} if content_type else {}
            r = client.post(path, content=content, headers=headers)
            statuses[r.status_code] += 1
            assert r.status_code < 500, (path, content[:300], r.status_code, r.text[:300])
            if r.status_code >= 400:
                problem = _error_shape(r)
                assert problem is None, (path, content[:300], r.status_code, problem)
                return
            assert r.status_code == 200
            body = json.loads(content)
            out = r.json()
            listed = out["scores"] if path == "/v1/score" else out["ranking"]
            scores = [s["score"] for s in listed]
            assert all(math.isfinite(s) and 0 <= s <= 1 for s in scores), out
            if path == "/v1/score":
                assert [s["item"] for s in listed] == [str(c) for c in body["candidates"]]
            else:
                assert scores == sorted(scores, reverse=True)

        check()
    print(f"statuses: {dict(statuses)}")
    assert statuses[200] >= 10 and statuses[422] >= 10  # the model was reached, often; and refused, often
    assert time.monotonic() - started < 120  # bounded: a hang or a slow path fails here, not in CI's timeout


def test_the_frameworks_own_errors_answer_the_error_shape(served):
    """What FastAPI / Starlette answer themselves (an undecodable body, JSON nested 200,000 deep, an unknown path,
    a wrong method) comes in the error shape too, with its status and headers. Mutation: drop the
    ``StarletteHTTPException`` handler in ``create_app`` and these answer ``{"detail": ...}``."""
    from starlette.testclient import TestClient

    from llmrec.serve import ServeConfig
    from llmrec.serve.app import create_app
    from llmrec.serve.service import RecommenderService

    service, _ = served
    roomy = RecommenderService(service.model, service.items, ServeConfig(data=".").server,  # default limits: 1 MiB
                               ratings=service.ratings, describe=service.describe)
    with TestClient(create_app(roomy)) as client:
        for body in (b"\xff\xfe{", b"[" * 200_000, b'{"history": [' * 50_000):
            r = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400 and _error_shape(r) is None, (body[:20], r.status_code, r.text[:200])
            assert r.json()["error"].startswith(("malformed request body", "malformed JSON"))
        r = client.get("/nope")
        assert r.status_code == 404 and r.json() == {"error": "Not Found", "field": None}
        r = client.get("/v1/score")
        assert r.status_code == 405 and _error_shape(r) is None and r.headers["allow"] == "POST"
