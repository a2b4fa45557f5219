"""Request bodies are refused before they are read: on the Content-Length header when it is too
large, and mid-stream when a chunked body passes the limit, so no client can make the server
hold more than the limit in memory. A client that stops sending its body for `read_timeout`
seconds gets a 408, so a trickle of bytes cannot hold a connection and a handler forever.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware), so the body is counted as it
arrives, before any handler buffers it.
"""

from __future__ import annotations

import asyncio
import json

from ponder.serve.errors import APIError


# The rest of a refused body is never read: the connection closes after the answer.
CLOSE = {"connection": "close"}


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
        body_done = False
        started = False

        async def counted_receive():
            # Raised as APIErrors, so the app's own handler answers them while it is reading.
            nonlocal received, body_done
            if body_done:  # later reads only wait for a disconnect (a streaming response does)
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except asyncio.TimeoutError:
                raise APIError(408, f"The request body stopped arriving for {self.read_timeout:g} s.",
                               None, "request_timeout", dict(CLOSE)) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large("Request body is more than that")
                body_done = not message.get("more_body", False)
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except APIError as error:  # read outside the app's handlers (none do today)
            if not started:  # once a response has begun, closing the connection is all that is left
                await _answer(send, error)

    def _too_large(self, what: str) -> APIError:
        return APIError(413, f"{what}; the limit is {self.max_bytes}.", None, "request_too_large", dict(CLOSE))


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
