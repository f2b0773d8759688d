"""Training keeps its freed memory in the heap instead of handing it back to the kernel.

glibc serves every allocation above its mmap threshold (32 MB at most) with a fresh mmap and
unmaps it when freed, so each training step of a base-size model faults its activations in
page by page again: MPNet on BoolQ (batch 32, 256 tokens, 2 cores) spent about two thirds of
its CPU time in the kernel. Inside ``kept_heap()`` big blocks come from the heap and freed
memory stays there for the next step; on exit the allocator's defaults are restored and the
surplus is returned (``malloc_trim``), so an evaluation or timing after training does not
carry the training's peak. benchmarks/train_allocator.py measures the effect.
``FASTFORMERS_KEEP_HEAP=0`` turns it off; on a C library without ``mallopt`` it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from contextlib import contextmanager
from typing import Iterator

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters (malloc.h)
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536  # glibc's defaults
NO_TRIM = -1  # mallopt(3): "Setting M_TRIM_THRESHOLD to -1 disables trimming completely"


def _libc():
    if os.environ.get("FASTFORMERS_KEEP_HEAP", "1") == "0":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None
    return libc


_depth = 0  # nested uses restore the defaults only when the outermost one ends


@contextmanager
def kept_heap() -> Iterator[bool]:
    """Yields whether the setting is in effect."""
    global _depth
    libc = _libc()
    kept = bool(libc and libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, NO_TRIM))
    _depth += 1
    try:
        yield kept
    finally:
        _depth -= 1
        if libc is not None and _depth == 0:
            libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
            libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
            libc.malloc_trim(0)
