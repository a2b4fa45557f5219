"""OpenAI-shaped errors: every failure the server answers is `{"error": {message, type, param,
code}}` with the status OpenAI uses, so the official client raises the matching class
(400 BadRequestError, 401 AuthenticationError, 404 NotFoundError, 429 RateLimitError, ...)."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field

from pydantic import ValidationError

log = logging.getLogger("ponder.serve")

# The `type` OpenAI sends with each status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


@dataclass
class APIError(Exception):
    status: int
    message: str
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    type: str | None = None

    def body(self) -> dict:
        kind = self.type or ERROR_TYPES.get(self.status, "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> APIError:
    return APIError(400, message, param, code)


def param_path(loc: tuple) -> str | None:
    """pydantic's location as OpenAI names parameters: `messages[0].content`. Union members
    (`str`, `list[ContentPart]`, `InputMessage`) are pydantic's, not the client's, and are dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part[:1].isupper() or "[" in part or part in ("str", "int", "float", "bool", "none", "dict", "list"):
            continue
        else:
            out += f".{part}" if out else part
    return out or None


def from_validation(error: ValidationError) -> APIError:
    """The first problem pydantic found, named by its path, as OpenAI words them. For a value
    that may take several shapes (text, or a list of parts) pydantic reports each shape's
    problem; a wrong-shape complaint is the least telling, so another comes first if there is one."""
    errors = error.errors()
    first = next((e for e in errors if not e["type"].endswith("_type")), errors[0])
    param = param_path(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        return bad_request(f"Unrecognized request argument supplied: {param}", param, "unknown_parameter")
    if kind == "missing":
        return bad_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if kind.endswith(("_type", "_parsing")):
        return bad_request(f"Invalid type for '{param}': {first['msg'].lower()}.", param, "invalid_type")
    return bad_request(f"Invalid value for '{param}': {first['msg']}.", param, "invalid_value")


def describe(error: BaseException) -> str:
    """An exception for the operator's log without its message: "ValueError at ponder/x.py:12".
    A message may quote a prompt or hidden reasoning, which never reach a log."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}{where}"


def failure(error: BaseException, request_id: str) -> APIError:
    """What a client is told of a generation that failed. The client's own mistakes (an
    APIError) keep their words; anything else is named by request id only, since an exception's
    text may quote the prompt or the hidden reasoning."""
    if isinstance(error, APIError):
        return error
    log.error("generation failed for %s: %s", request_id, describe(error))
    return APIError(500, f"Generation failed for request {request_id}; the server's log has the cause.",
                    None, "server_error")


def failure_body(error: BaseException, request_id: str) -> dict:
    """The error body for a generation that failed after a stream began (see `failure`)."""
    return failure(error, request_id).body()


class ErrorShield:
    """The outermost layer of the app: an exception that escapes it (Starlette re-raises after its
    500 handler has answered) is logged by type and place only, never handed to uvicorn, whose
    log line would print the exception's message and traceback."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        except Exception as error:  # the answer (a 500) was sent by the app's own handler, if it could be
            log.error("unhandled error on %s: %s", scope.get("path", "?"), describe(error))
