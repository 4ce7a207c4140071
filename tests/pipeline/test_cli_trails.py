"""`stip-rt track --video OUT --trails N`: trajectory trails on the annotated video."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from stip_rt.cli import main


def _last_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    return frames[-1].astype(np.int16)


def test_trails_are_drawn_on_the_annotated_video(data_dir: Path, tmp_path: Path) -> None:
    video = data_dir / "opencv_samples" / "vtest.avi"
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    base = ["track", str(video), "--pose", "none", "--detections", str(gt), "--max-frames", "25"]
    assert main([*base, "--video", str(tmp_path / "plain.mp4")]) == 0
    assert main([*base, "--video", str(tmp_path / "trails.mp4"), "--trails", "20"]) == 0
    plain, trails = _last_frame(tmp_path / "plain.mp4"), _last_frame(tmp_path / "trails.mp4")
    changed = np.abs(plain - trails).max(axis=2) > 40  # well above the encoder's noise
    assert changed.sum() > 200, "no trail was drawn"
    assert changed.mean() < 0.05  # thin lines, not a different picture


@pytest.mark.parametrize("value", ["-1", "x"])
def test_a_bad_trail_length_is_refused_before_anything_runs(
    data_dir: Path, tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    video = data_dir / "opencv_samples" / "vtest.avi"
    out = tmp_path / "a.mp4"
    with pytest.raises(SystemExit) if value == "x" else _nothing():
        code = main(["track", str(video), "--pose", "none", "--video", str(out), "--trails", value])
        assert code == 2 and "trails" in capsys.readouterr().err
    assert not out.exists()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False
