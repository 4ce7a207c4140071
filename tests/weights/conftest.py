"""Fixture ``zoo``: a local HTTP server and a throw-away zoo manifest in a temporary cache."""

from __future__ import annotations

from collections.abc import Iterator
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
