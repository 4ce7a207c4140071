"""`stip-rt batch --engine ray`: the same process_video unit as Ray tasks on a local in-process Ray."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import pytest

from stip_rt.batch import DONE
from stip_rt.cli import main


def _cut(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``src``, re-encoded (mpeg4 in AVI), at half size."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 384, 288, "yuv420p"
        for i, frame in enumerate(inp.decode(video=0)):
            if i == frames:
                break
            out.mux(stream.encode(frame.reformat(384, 288)))
        out.mux(stream.encode(None))
    return dst


def test_ray_missing_is_one_clear_error(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    video = data_dir / "opencv_samples" / "vtest.avi"
    assert main(["batch", str(video), "--out-dir", str(tmp_path / "o"), "--pose", "none", "--engine", "ray"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        'stip-rt batch: error: --engine ray needs Ray, which is not installed: pip install "stip-rt[ray]" '
        '(or "ray[default]")'
    )
    assert not (tmp_path / "o").exists()


def test_ray_flags_need_the_ray_engine(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = data_dir / "opencv_samples" / "vtest.avi"
    assert main(["batch", str(video), "--out-dir", str(tmp_path / "o"), "--gpus-per-task", "1"]) == 2
    assert "--address and --gpus-per-task need --engine ray" in capsys.readouterr().err


def test_ray_engine_on_a_local_ray(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """About 7 s on a 2-core machine (Ray starts in this process), so not marked slow: CI runs it."""
    ray = pytest.importorskip("ray")
    videos = tmp_path / "videos"
    videos.mkdir()
    vtest = data_dir / "opencv_samples" / "vtest.avi"
    _cut(vtest, videos / "first.avi", 12)
    _cut(vtest, videos / "second.avi", 7)
    (videos / "broken.avi").write_text("not a video")
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    out = tmp_path / "out"
    argv = ["batch", str(videos), "--out-dir", str(out), "--format", "jsonl,json", "--pose", "none"]
    argv += ["--detections", str(gt), "--engine", "ray", "--cpus-per-task", "1"]
    ray.init(num_cpus=2, include_dashboard=False)  # in this process; run_batch_ray uses it and leaves it up
    try:
        assert main(argv) == 1  # the broken video failed, the batch went on
        table = capsys.readouterr().out
        assert "3 videos: 2 done, 0 skipped, 1 failed" in table
        for name, frames in (("first", 12), ("second", 7)):
            marker = json.loads((out / name / DONE).read_text())
            assert marker["frames"] == frames and marker["formats"] == ["jsonl", "json"]
            assert marker["config"]["runtime"]["device"] == "cpu"
            assert len((out / name / f"{name}.jsonl").read_text().splitlines()) == frames + 1
        assert "broken.avi" in (out / "broken" / "error.txt").read_text()
        assert main(argv) == 1  # resumable: the done videos are skipped, the broken one tried again
        assert "3 videos: 0 done, 2 skipped, 1 failed" in capsys.readouterr().out
    finally:
        ray.shutdown()
