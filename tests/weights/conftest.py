"""Fixture ``zoo``: a local HTTP server and a throw-away zoo manifest in a temporary cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from weights_http import Zoo, serve

from stip_rt import weights
from stip_rt.weights import manifest


@pytest.fixture
def zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Zoo]:
    with serve(tmp_path) as z:
        monkeypatch.setattr(manifest, "zoo_file", lambda: z.manifest)
        monkeypatch.setenv(weights.HOME_ENV, str(z.home))
        monkeypatch.delenv(weights.MIRROR_ENV, raising=False)
        yield z


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    """``read_only(folder)``: make a folder read-only for this test (skips where permissions are not
    enforced, e.g. root with CAP_DAC_OVERRIDE; run under ``capsh --drop=cap_dac_override,...`` there)."""
    folders: list[Path] = []

    def make(folder: Path) -> None:
        folder.chmod(0o555)
        folders.append(folder)
        probe = folder / ".probe"
        try:
            probe.touch()
        except PermissionError:
            return
        probe.unlink()
        pytest.skip("folder permissions are not enforced for this user (root?)")

    try:
        yield make
    finally:
        for f in folders:
            f.chmod(0o755)
