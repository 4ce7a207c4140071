"""stip_rt.malloc: glibc's free memory trimmed periodically, which keeps long runs' memory flat."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from stip_rt import malloc

glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")


@glibc
def test_one_trimming_thread_per_process() -> None:
    assert malloc.start_trimming(every_s=60) is True
    assert malloc.start_trimming(every_s=60) is True
    names = [t.name for t in threading.enumerate()]
    assert names.count(malloc.THREAD_NAME) == 1
    assert not malloc.THREAD_NAME.startswith("stip-rt-")  # not a pipeline thread: leak checks skip it


@glibc
def test_freed_heap_blocks_go_back_to_the_system_when_trimmed() -> None:
    """After a large block is freed, glibc's dynamic threshold keeps later 8 MB blocks on the heap:
    freed, they stay resident; a trim returns them (the thread does this every few seconds)."""
    code = """
import ctypes, sys
from stip_rt import malloc
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
libc.free(libc.malloc(16 << 20))  # raises glibc's dynamic threshold to 16 MB
before = rss()
blocks = [libc.malloc(8 << 20) for _ in range(8)]
for b in blocks:
    ctypes.memset(b, 1, 8 << 20)
for b in blocks[:-1]:
    libc.free(b)  # the last one pins the heap top: freed heap blocks below it stay resident
kept = rss() - before
trimmed = malloc.trim()
print(kept, rss() - before, trimmed)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    kept, after, trimmed = out.stdout.split()
    assert float(kept) > 40, out.stdout  # 7 freed 8 MB blocks stay resident on the heap
    assert float(after) < 20 and trimmed == "True", out.stdout  # the trim returned them
