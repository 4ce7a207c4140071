"""Fixtures shared by the runtime tests: a read-only mount simulated at a folder, a stand-in for /tmp."""

from __future__ import annotations

import errno
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def read_only_under(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """``read_only_under(folder)`` simulates a read-only mount at ``folder``: creating folders or
    opening files for writing under it raises EROFS (runs as root too, where chmod is not enforced)."""

    def simulate(folder: Path) -> None:
        real_mkdir, real_open = Path.mkdir, Path.open

        def inside(p: Path) -> bool:
            return p == folder or folder in p.parents

        def mkdir(self: Path, *args: object, **kw: object) -> None:
            if inside(self) and not self.is_dir():
                raise OSError(errno.EROFS, "Read-only file system", str(self))
            real_mkdir(self, *args, **kw)  # type: ignore[arg-type]

        def open_(self: Path, mode: str = "r", *args: object, **kw: object) -> object:
            if inside(self) and any(c in mode for c in "wxa+"):
                raise OSError(errno.EROFS, "Read-only file system", str(self))
            return real_open(self, mode, *args, **kw)  # type: ignore[call-overload]

        monkeypatch.setattr(Path, "mkdir", mkdir)
        monkeypatch.setattr(Path, "open", open_)

    return simulate


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder standing in for /tmp (``tempfile.gettempdir()``), to check nothing is left there."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root
