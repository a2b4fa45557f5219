"""Request bodies are refused before they are read: on the Content-Length header when it is too
large, and mid-stream when a chunked body passes the limit, so no client can make the server
hold more than the limit in memory. A client that stops sending its body for `read_timeout`
seconds, or whose whole body takes longer than BODY_DEADLINE_READS times that, gets a 408, so a
trickle of bytes cannot hold a connection and a handler for long.

An answer sent before the body was read whole (a 401, a 404, a 429 before the body is looked
at) closes the connection: otherwise the server would go on waiting for the rest of a body that
nobody reads, and a client could hold the connection open forever by sending it a byte at a time.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware), so the body is counted as it
arrives, before any handler buffers it.
"""

from __future__ import annotations

import asyncio
import json

from ponder.serve.errors import APIError


# The rest of a refused body is never read: the connection closes after the answer.
CLOSE = {"connection": "close"}
BODY_DEADLINE_READS = 6  # the whole body must arrive within this many read timeouts


class BodyLimit:
    def __init__(self, app, max_bytes: int, read_timeout: float):
        self.app, self.max_bytes, self.read_timeout = app, max_bytes, read_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            return await _answer(send, self._too_large(f"Request body is {declared} bytes"))  # nothing read
        received = 0
        body_done = not (declared or _chunked(scope))
        started = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BODY_DEADLINE_READS * self.read_timeout

        async def counted_receive():
            # Raised as APIErrors, so the app's own handler answers them while it is reading.
            nonlocal received, body_done
            if body_done:  # later reads only wait for a disconnect (a streaming response does)
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), min(self.read_timeout, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise APIError(408, f"The request body did not arrive in time (a pause of {self.read_timeout:g} s, "
                               f"or {BODY_DEADLINE_READS * self.read_timeout:g} s in all).",
                               None, "request_timeout", dict(CLOSE)) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large("Request body is more than that")
                body_done = not message.get("more_body", False)
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not body_done and not any(k.lower() == b"connection" for k, _ in message.get("headers", ())):
                    message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except APIError as error:  # read outside the app's handlers (none do today)
            if not started:  # once a response has begun, closing the connection is all that is left
                await _answer(send, error)

    def _too_large(self, what: str) -> APIError:
        return APIError(413, f"{what}; the limit is {self.max_bytes}.", None, "request_too_large", dict(CLOSE))


def _chunked(scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP layer refuses a malformed length before it gets here
    return None


async def _answer(send, error: APIError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *((k.encode(), v.encode()) for k, v in error.headers.items())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
