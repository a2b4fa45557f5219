"""uvicorn's h11 protocol with a deadline for a request's head.

uvicorn closes a keep-alive connection that sits idle between requests, but not one that opens
and never finishes its headers (slowloris): hundreds of those would each hold a socket and a
file descriptor forever. Here every connection must deliver a complete request head within
`header_timeout` seconds of opening, or of its previous response ending, or it is closed.
The body has its own deadline between reads (body_limit.py).

h11 is chosen explicitly, also where httptools is installed, so the deadline always applies.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class DeadlineH11Protocol(H11Protocol):
    header_timeout: float = 10.0  # set per server by `with_header_timeout`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is complete (or the connection is done)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_overdue)

    def _disarm(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[DeadlineH11Protocol]:
    """The protocol class for one server (uvicorn takes a class, not an instance)."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"header_timeout": seconds})
