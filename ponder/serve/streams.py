"""Server-sent events: framing, and merging the event queues of several generations into one
stream (n choices stream interleaved, each chunk tagged with its index)."""

from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator, Sequence

from ponder.engine.continuous import Done, Failed


def sse(data: dict, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


async def merged_events(generations: Sequence) -> AsyncIterator[tuple[int, object]]:
    """(index, event) from all generations as they come, until each has finished or failed.
    If the consumer stops early (the client went away), the unfinished generations are cancelled
    so their rows go back to the batch."""
    merged: asyncio.Queue = asyncio.Queue()

    async def pump(index: int, generation) -> None:
        while True:
            event = await generation.events.get()
            await merged.put((index, event))
            if isinstance(event, (Done, Failed)):
                return

    pumps = [asyncio.create_task(pump(i, g)) for i, g in enumerate(generations)]
    open_ = len(generations)
    try:
        while open_:
            index, event = await merged.get()
            if isinstance(event, (Done, Failed)):
                open_ -= 1
            yield index, event
    finally:
        for task in pumps:
            task.cancel()
        if open_:
            for g in generations:
                g.cancel()
