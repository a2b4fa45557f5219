"""The FastAPI application: routes, and the handlers that turn every failure into an
OpenAI-shaped error body (never a bare 500 for something the client caused)."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ponder.errors import UserError
from ponder.serve.body_limit import BodyLimit
from ponder.serve.chat import chat_completions
from ponder.serve.errors import APIError, describe
from ponder.serve.openapi import publish_request_schemas
from ponder.serve.responses import create_response, delete_response, get_response
from ponder.serve.services import Services

log = logging.getLogger("ponder.serve")


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="ponder", description="An OpenAI-compatible reasoning API.", docs_url=None, redoc_url=None)
    app.state.services = services
    # Outside every route: a body over the limit is refused before it is read, not after.
    app.add_middleware(BodyLimit, max_bytes=services.cfg.max_body_bytes, read_timeout=services.cfg.header_timeout)
    started = int(time.time())

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError):
        return JSONResponse(APIError(400, str(error), None, "invalid_value").body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        code = {404: "unknown_url", 405: "method_not_allowed"}.get(error.status_code)
        message = (f"Invalid URL ({request.method} {request.url.path})" if error.status_code in (404, 405)
                   else str(error.detail))
        return JSONResponse(APIError(error.status_code, message, None, code).body(), status_code=error.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception):
        # The type and place only: an exception's message may quote a prompt or hidden reasoning.
        log.error("internal error on %s %s: %s", request.method, request.url.path, describe(error))
        body = APIError(500, "The server had an error while processing your request.", None, "server_error").body()
        return JSONResponse(body, status_code=500)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": services.model_name}

    @app.get("/v1/models")
    async def models(request: Request):
        services.authenticate(request)
        return {"object": "list", "data": [_model_card(services, started)]}

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str, request: Request):
        services.authenticate(request)
        services.check_model(model_id)
        return _model_card(services, started)

    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"], response_model=None)
    app.add_api_route("/v1/responses", create_response, methods=["POST"], response_model=None)
    app.add_api_route("/v1/responses/{response_id}", get_response, methods=["GET"], response_model=None)
    app.add_api_route("/v1/responses/{response_id}", delete_response, methods=["DELETE"], response_model=None)
    publish_request_schemas(app)
    return app


def _model_card(services: Services, created: int) -> dict:
    return {"id": services.model_name, "object": "model", "created": created, "owned_by": "ponder"}
