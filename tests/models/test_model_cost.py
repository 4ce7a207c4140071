"""scripts/model_cost.py: the counted MACs (STIP_SPEC §6 figures) and the doc update."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from load_script import load_script


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    return load_script("model_cost")


def test_counts_match_the_official_model(cost: ModuleType) -> None:
    hr = cost.measure("hrnet-w32-crowdpose-256x192")
    st = cost.measure("stip-w32-crowdpose-256x192")
    assert hr["params"] == 28_536_014 and st["params"] == 28_657_241
    assert round(hr["official"] / 1e9, 3) == 7.645  # HRNet's "7.1 GFLOPs" (÷ 1024³)
    assert round(st["official"] / 1e9, 3) == 8.260  # official STIPNet forward
    # pruned inference < official; the fused op's arithmetic is smaller still
    assert st["fused"] < st["inference"] < st["official"]
    k, c = 14, 32
    assert st["inference"] - st["fused"] == k * c * c * 128 * 96 - k * c * c * 64 * 48 - k * c * 128 * 96
    assert "| stip-w32-crowdpose-256x192 | 14 | 28,657,241 | 8.260 |" in cost.table([hr, st])


def test_update_doc(cost: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    doc = tmp_path / "models.md"
    doc.write_text(f"intro\n{cost.START}\nold table\n{cost.END}\noutro\n")
    assert cost.main(["--models", "hrnet-w32-coco-256x192", "--update-doc", str(doc)]) == 0
    text = doc.read_text()
    assert "old table" not in text and "| hrnet-w32-coco-256x192 | 17 | 28,536,113 | 7.645 |" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    doc.write_text("no markers\n")
    assert cost.main(["--models", "hrnet-w32-coco-256x192", "--update-doc", str(doc)]) == 2
    assert "expected one" in capsys.readouterr().err
