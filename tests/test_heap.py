"""compress/heap.py on the real C library: inside ``kept_heap`` a freed 64 MB block is reused from the
heap, so filling it again does not fault its pages in afresh; with glibc's defaults every round does.
malloc and free are called directly, so no other allocation lands between the rounds."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_ROUNDS = """
import ctypes, ctypes.util, json, resource
from compress.heap import kept_heap

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
SIZE = 64 * 2**20  # above glibc's largest mmap threshold (32 MB), as a base-size model's activations are

def faults(rounds=4):
    out = []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(SIZE)
        ctypes.memset(block, 1, SIZE)
        libc.free(block)
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return out

with kept_heap() as kept:
    inside = faults()
print(json.dumps({"kept": kept, "inside": inside, "after": faults()}))
"""


def _run(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _ROUNDS], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}, cwd=os.path.dirname(os.path.dirname(__file__)))
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_block_is_reused_inside_kept_heap_and_faulted_afresh_outside():
    pages = 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    on = _run({"FASTFORMERS_KEEP_HEAP": "1"})
    assert on["kept"] is True
    assert on["inside"][0] > 0.9 * pages  # the first fill faults the block in
    assert max(on["inside"][1:]) < 0.05 * pages  # then the heap keeps it
    assert min(on["after"]) > 0.9 * pages  # defaults restored on exit: unmapped when freed again
    off = _run({"FASTFORMERS_KEEP_HEAP": "0"})
    assert off["kept"] is False and min(off["inside"]) > 0.9 * pages  # switched off: glibc's defaults
