"""Give memory that the C allocator keeps but no longer uses back to the operating system.

Training on CPU frees and allocates activations of a different size every step (batches have
different lengths). glibc's malloc keeps the freed blocks in its heaps, fragmented, so a process
grows though it holds no more live tensors: 120 steps of the bundled SFT tune reached 9 GB for a
2.5M-parameter model. `malloc_trim(0)` returns the free pages; elsewhere (macOS, musl, Windows)
this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Trim the C heap; True if the allocator supports it (glibc), False where it is a no-op."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def resident_bytes() -> int | None:
    """This process's resident memory, from /proc (Linux); None where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


class HeapTrimmer:
    """Called once per training step: trims the C heap when the resident size has grown by more
    than `slack` bytes since the last trim. Trimming every step cost about 15% of the step time
    (freed pages are faulted back in the next step); this trims only when the heap has grown."""

    def __init__(self, slack: int = 1 << 30):
        self.slack = slack
        self._floor = resident_bytes()

    def __call__(self) -> bool:
        """True if it trimmed."""
        now = resident_bytes()
        if now is None or self._floor is None or now - self._floor <= self.slack:
            return False
        release_freed_memory()
        self._floor = resident_bytes() or now
        return True
