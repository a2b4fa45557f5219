"""The heap trimmer that keeps CPU training from growing to gigabytes (ponder/memory.py)."""

from __future__ import annotations

import mmap
import platform
import sys

import pytest

from ponder.memory import HeapTrimmer, release_freed_memory, resident_bytes

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and glibc's malloc_trim are Linux's")


def touched_block(size: int) -> mmap.mmap:
    """`size` bytes of fresh pages, every one written. Not `bytearray(size)`: malloc may serve it
    from a free block of the heap that is already resident (a long test session leaves some),
    and then the resident size does not move at all."""
    block = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        block[offset] = 1
    return block


@linux
def test_resident_bytes_sees_memory_being_touched():
    before = resident_bytes()
    block = touched_block(64 << 20)
    assert resident_bytes() - before > 32 << 20
    block.close()


@linux
def test_trims_only_after_growing_past_its_slack():
    trim = HeapTrimmer(slack=16 << 20)
    assert not trim()  # nothing grew yet
    block = touched_block(64 << 20)
    assert trim()  # grew by 64 MB > 16 MB: trimmed, and the floor moves up to here
    assert not trim()
    block.close()
    assert not HeapTrimmer(slack=1 << 40)()  # a slack no process reaches


def test_release_trims_under_glibc_and_does_nothing_elsewhere():
    assert release_freed_memory() is (platform.libc_ver()[0] == "glibc")
