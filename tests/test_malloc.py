"""stip_rt.malloc: the fixed glibc mmap threshold that keeps long runs' memory flat."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stip_rt.malloc import fix_mmap_threshold


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_the_threshold_is_set_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert fix_mmap_threshold() is True


def test_a_users_own_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    assert fix_mmap_threshold() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_freed_large_blocks_go_back_to_the_system() -> None:
    """After a large block is freed, glibc's dynamic threshold keeps later 8 MB blocks on the heap
    (resident after free); with the fixed threshold they are unmapped on free."""
    code = """
import ctypes, sys
from stip_rt.malloc import fix_mmap_threshold
if sys.argv[1] == "fixed":
    fix_mmap_threshold()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
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
print(rss() - before)
"""
    grown = {}
    for mode in ("dynamic", "fixed"):
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True)
        grown[mode] = float(out.stdout.split()[-1])
    assert grown["dynamic"] > 40, grown  # 7 freed 8 MB blocks stay resident on the heap
    assert grown["fixed"] < 20, grown  # they were their own mappings: returned on free
