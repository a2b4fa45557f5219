"""The request and error shapes in /openapi.json.

The handlers read their bodies themselves (so that a bad body becomes OpenAI's 400, not FastAPI's
422), which leaves FastAPI's generated document without request bodies. This fills them in from
the same pydantic models that validate the requests, so the published schema can't drift from
what the server accepts, and declares the `{"error": {...}}` body every failure carries. It leaves
out the 200 bodies: OpenAI's own reference describes those, and ponder answers in them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from ponder.serve.protocol import ChatCompletionRequest, ResponsesRequest

REF = "#/components/schemas/{model}"

BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("/v1/chat/completions", "post"): ChatCompletionRequest,
    ("/v1/responses", "post"): ResponsesRequest,
}

ERROR = {
    "type": "object",
    "description": "Every failure, as OpenAI sends it, so its SDKs raise the matching error class.",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "properties": {
            "message": {"type": "string", "description": "One line for a person: what was wrong and what is valid."},
            "type": {"type": "string", "examples": ["invalid_request_error", "rate_limit_error"]},
            "param": {"type": ["string", "null"], "description": "The parameter at fault, e.g. messages[0].content."},
            "code": {"type": ["string", "null"], "examples": ["unknown_parameter", "invalid_value"]},
        },
    }},
}

# The statuses each kind of operation answers besides 200 (errors.py has their types).
ERRORS_FOR_POST = {
    "400": "The body is not valid JSON, or a parameter is unknown, mistyped, out of range or refused.",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The request asks for something this server does not allow (e.g. include_reasoning).",
    "404": "The model, or the previous response, does not exist.",
    "408": "The body stopped arriving for longer than the server waits (--header-timeout).",
    "413": "The body is larger than the server accepts.",
    "429": "A rate limit or quota of the key was reached; Retry-After says when to try again.",
}
ERRORS_FOR_LIST = {"401": ERRORS_FOR_POST["401"]}
ERRORS_FOR_ITEM = {**ERRORS_FOR_LIST, "404": "No such object for this key."}


def publish_request_schemas(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /openapi.json) carry request bodies, errors and bearer auth.
    Built once, on the first request for it, as FastAPI does."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _completed(generate())
        return app.openapi_schema

    app.openapi = openapi


def _completed(doc: dict[str, Any]) -> dict[str, Any]:
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR
    components["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "An API key from `ponder keys create`; a keyless loopback server needs none.",
    }}
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            model = BODIES.get((path, method))
            if model is not None:
                operation["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": {"$ref": REF.format(model=_publish(model, schemas))}}}}
            if path.startswith("/v1/"):
                operation["security"] = [{"bearer": []}]
                _declare_errors(operation, ERRORS_FOR_POST if model is not None
                                else ERRORS_FOR_ITEM if "{" in path else ERRORS_FOR_LIST)
    _drop_unused_validation_error(doc, schemas)
    return doc


def _publish(model: type[BaseModel], schemas: dict[str, Any]) -> str:
    """Put `model`'s schema and the models it uses into components/schemas; its name."""
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return model.__name__


def _declare_errors(operation: dict[str, Any], errors: dict[str, str]) -> None:
    responses = operation.setdefault("responses", {})
    # A bad path parameter is OpenAI's 400 or 404 here, never FastAPI's 422.
    responses.pop("422", None)
    for status, description in errors.items():
        responses[status] = {"description": description,
                             "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


def _drop_unused_validation_error(doc: dict[str, Any], schemas: dict[str, Any]) -> None:
    still_used = any("422" in op.get("responses", {}) for ops in doc.get("paths", {}).values() for op in ops.values())
    if not still_used:
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
