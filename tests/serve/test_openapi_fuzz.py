"""Schemathesis against the server's own /openapi.json: requests that fit the published schemas
(positive) and requests that break them one place at a time (negative), sent to a real server;
not one may be answered with a 5xx.

The schema is the one the server publishes, with one change: `model` is pinned to the served
model, so that the bodies that fit reach the engine instead of stopping at a 404.
"""

from __future__ import annotations

import copy
import re

import httpx2 as httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from ponder.serve.keys import KeyLimits
from ponder.serve.settings import ServeConfig

from tests.serve.conftest import MODEL, running_server

POSTS = [("/v1/chat/completions", "POST"), ("/v1/responses", "POST")]
READS = [("/v1/models", "GET"), ("/health", "GET"), ("/v1/models/{model_id}", "GET"),
         ("/v1/responses/{response_id}", "GET"), ("/v1/responses/{response_id}", "DELETE")]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def published(url: str) -> dict:
    return httpx.get(f"{url}/openapi.json", timeout=30).json()


def fuzz_schema(doc: dict):
    doc = copy.deepcopy(doc)
    for name in ("ChatCompletionRequest", "ResponsesRequest"):
        doc["components"]["schemas"][name]["properties"]["model"] = {"type": "string", "enum": [MODEL]}
    return schemathesis.openapi.from_dict(doc)


def fuzz(schema, url: str, path: str, method: str, mode: GenerationMode, examples: int, headers=None) -> None:
    """Send `examples` generated requests to one operation; a 5xx fails with schemathesis's
    reproducer (a curl command) in the message."""
    operation = schema[path][method]

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        case.call_and_validate(base_url=url, headers=headers, checks=[not_a_server_error], timeout=60)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # Nothing in the operation can be made invalid: GET /health takes no input at all.


@pytest.fixture(scope="module")
def keyless(tmp_path_factory):
    db = tmp_path_factory.mktemp("fuzz") / "serve.db"
    with running_server(ServeConfig(db=str(db), allow_reasoning=True)) as (url, _):
        yield url, fuzz_schema(published(url))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A server that requires a key, with a token budget small enough that some requests meet the
    rate limiter."""
    db = tmp_path_factory.mktemp("fuzz-keyed") / "serve.db"
    with running_server(ServeConfig(db=str(db), require_key=True)) as (url, services):
        secret, _ = services.keys.create("fuzz", KeyLimits(tpm=3000))
        yield url, fuzz_schema(published(url)), {"Authorization": f"Bearer {secret}"}


def test_the_published_schema_has_the_request_bodies_and_errors(keyless):
    url, _ = keyless
    doc = published(url)
    schemas = doc["components"]["schemas"]
    for path, name in (("/v1/chat/completions", "ChatCompletionRequest"), ("/v1/responses", "ResponsesRequest")):
        post = doc["paths"][path]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{name}"}
        assert schemas[name]["additionalProperties"] is False  # unknown names are a 400
        for status in ("400", "401", "404", "413", "429"):
            assert post["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
        assert "422" not in post["responses"]  # the server never answers FastAPI's 422
    assert {"service_tier", "safety_identifier", "prompt_cache_key", "verbosity"} <= set(
        schemas["ChatCompletionRequest"]["properties"])
    assert "verbosity" in schemas["TextOptions"]["properties"]
    # Every $ref points at a published schema: nothing is left in a pydantic $defs.
    text = str(doc)
    assert "$defs" not in text
    for ref in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert ref in schemas, ref
    assert schemas["Error"]["properties"]["error"]["required"] == ["message", "type", "param", "code"]


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("path, method", POSTS, ids=lambda x: x)
def test_no_generated_request_gets_a_5xx(keyless, path, method, mode):
    url, schema = keyless
    fuzz(schema, url, path, method, mode, examples=40)


@pytest.mark.parametrize("path, method", READS, ids=lambda x: x)
def test_no_generated_read_gets_a_5xx(keyless, path, method):
    url, schema = keyless
    for mode in MODES:
        fuzz(schema, url, path, method, mode, examples=10)


@pytest.mark.parametrize("path, method", POSTS + READS[:1], ids=lambda x: x)
def test_with_a_key_required_no_request_gets_a_5xx(keyed, path, method):
    url, schema, auth = keyed
    for mode in MODES:
        fuzz(schema, url, path, method, mode, examples=10, headers=auth)
        fuzz(schema, url, path, method, mode, examples=5)  # no key: a 401, never a 5xx


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("path, method", POSTS, ids=lambda x: x)
def test_a_longer_fuzz_run_finds_no_5xx(keyless, path, method, mode):
    url, schema = keyless
    fuzz(schema, url, path, method, mode, examples=400)
