"""scripts/gpu_carry.py: the folder a GPU machine without network or ../shared needs for gpu_check.sh."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from load_script import load_script

gpu_carry = load_script("gpu_carry")


def test_carry_folder_holds_the_data_and_a_cut_video(shared_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "carry"
    assert gpu_carry.main(["--shared", str(shared_dir), "--out", str(out), "--no-wheels", "--frames", "25"]) == 0
    for rel in gpu_carry.COPIED:
        assert (out / "shared" / rel).exists(), rel
    with av.open(str(out / "shared" / gpu_carry.VIDEO)) as video:
        assert sum(1 for _ in video.decode(video=0)) == 25
    run = (out / "run.sh").read_text()
    assert 'gpu_check.sh --device cuda --wheels "$HERE/wheels" --shared "$HERE/shared"' in run
    assert "holds" in capsys.readouterr().out


def test_missing_data_is_named_and_too_large_a_folder_fails(shared_dir: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty_shared"
    empty.mkdir()
    assert gpu_carry.main(["--shared", str(empty), "--out", str(tmp_path / "c"), "--no-wheels"]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "fixtures/official_parity" in err and gpu_carry.VIDEO in err
    args = ["--shared", str(shared_dir), "--out", str(tmp_path / "c"), "--no-wheels", "--frames", "5"]
    assert gpu_carry.main([*args, "--limit-mib", "1"]) == 1
    assert "over the 1 MiB" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["av", "no-such-package-xyz"])
def test_wheels_are_pinned_to_the_installed_versions(name: str) -> None:
    pinned = gpu_carry.pinned(name)
    assert pinned == (f"av=={av.__version__}" if name == "av" else name)
