"""`stip-rt batch` resumes only what is done the same way: formats, annotated video and options are
compared with done.json; --force redoes; an interrupt leaves no done.json."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import av
import pytest

from stip_rt import batch
from stip_rt.batch import DONE, ERROR, process_video
from stip_rt.cli import main
from stip_rt.run_load import load_run_config


@pytest.fixture()
def one_video(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.avi").symlink_to(data_dir / "opencv_samples" / "vtest.avi")
    return folder


def _argv(videos: Path, out: Path, data_dir: Path, *extra: str) -> list[str]:
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    return ["batch", str(videos), "--out-dir", str(out), "--pose", "none", "--detections", str(gt), "-N", "8", *extra]


def _status(capsys: pytest.CaptureFixture[str]) -> str:
    """The table's summary line (after it, one ``output: DIR`` line per video)."""
    return [x for x in capsys.readouterr().out.splitlines() if not x.startswith("output: ")][-1]


def test_resume_redoes_when_formats_video_or_options_differ(
    one_video: Path,
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "out"
    done = out / "a" / DONE
    assert main(_argv(one_video, out, data_dir, "--format", "jsonl")) == 0
    assert _status(capsys) == "1 videos: 1 done, 0 skipped, 0 failed"
    marker = json.loads(done.read_text())
    assert marker["formats"] == ["jsonl"] and marker["video"] is False

    assert main(_argv(one_video, out, data_dir, "--format", "jsonl")) == 0  # the same: skipped
    assert _status(capsys) == "1 videos: 0 done, 1 skipped, 0 failed"
    with caplog.at_level(logging.WARNING):
        assert main(_argv(one_video, out, data_dir, "--format", "jsonl,csv")) == 0  # another format: redone
    assert _status(capsys) == "1 videos: 1 done, 0 skipped, 0 failed"
    assert "formats were jsonl, now jsonl,csv" in caplog.text
    assert (out / "a" / "a.csv").is_file() and json.loads(done.read_text())["formats"] == ["jsonl", "csv"]
    assert main(_argv(one_video, out, data_dir, "--format", "csv,jsonl")) == 0  # same set, other order: skipped
    assert _status(capsys) == "1 videos: 0 done, 1 skipped, 0 failed"

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(_argv(one_video, out, data_dir, "--format", "csv,jsonl", "--set", "track.min_hits=5")) == 0
    assert _status(capsys) == "1 videos: 1 done, 0 skipped, 0 failed"
    assert "options changed: track.min_hits" in caplog.text
    assert main(_argv(one_video, out, data_dir, "--format", "csv,jsonl", "--set", "track.min_hits=5", "--video")) == 0
    assert _status(capsys) == "1 videos: 1 done, 0 skipped, 0 failed"
    with av.open(str(out / "a" / "a.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 8

    same = ("--format", "csv,jsonl", "--set", "track.min_hits=5", "--video")
    assert main(_argv(one_video, out, data_dir, *same, "--set", "queues.size=3")) == 0  # speed only: skipped
    assert _status(capsys) == "1 videos: 0 done, 1 skipped, 0 failed"
    mtime = (out / "a" / "a.jsonl").stat().st_mtime_ns
    assert main(_argv(one_video, out, data_dir, *same, "--force")) == 0
    assert _status(capsys) == "1 videos: 1 done, 0 skipped, 0 failed"
    assert (out / "a" / "a.jsonl").stat().st_mtime_ns != mtime


def test_request_stop_ends_the_video_without_done_json(one_video: Path, tmp_path: Path, data_dir: Path) -> None:
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    config = load_run_config(pose="none", detections=str(gt))
    vdir = tmp_path / "out" / "a"
    timer = threading.Timer(1.0, batch.request_stop)  # what a worker's signal handler does
    timer.start()
    try:
        result = process_video(str(one_video / "a.avi"), str(vdir), config, ["json", "jsonl"], annotate=True)
    finally:
        timer.cancel()
        batch._STOP.clear()
    assert result.status == "interrupted" and 0 < result.frames < 795
    assert not (vdir / DONE).exists() and "interrupted" in (vdir / ERROR).read_text()
    lines = (vdir / "a.jsonl").read_text().splitlines()
    assert len(json.loads((vdir / "a.json").read_text())["frames"]) == len(lines) - 1 == result.frames
    with av.open(str(vdir / "a.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == result.frames


def test_a_redo_leaves_no_output_of_the_earlier_run_it_does_not_write(
    one_video: Path, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Done again with fewer formats (or without --video), the folder holds only this run's outputs:
    no a.csv or a.mp4 of the earlier options beside them."""
    out = tmp_path / "out"
    assert main(_argv(one_video, out, data_dir, "--format", "jsonl,csv", "--video")) == 0
    assert sorted(p.name for p in (out / "a").iterdir()) == ["a.csv", "a.jsonl", "a.mp4", DONE]
    assert main(_argv(one_video, out, data_dir, "--format", "jsonl", "--set", "track.min_hits=5")) == 0
    assert _status(capsys) == "1 videos: 1 done, 0 skipped, 0 failed"
    assert sorted(p.name for p in (out / "a").iterdir()) == ["a.jsonl", DONE]
    assert json.loads((out / "a" / DONE).read_text())["outputs"] == ["a.jsonl"]


@pytest.mark.parametrize("how", ["worker stop", "ctrl-c in process"])
def test_an_interrupted_redo_keeps_the_earlier_finished_outputs(
    one_video: Path, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Ctrl-C (or a worker's stop) during --force leaves the complete earlier outputs, not partial ones,
    and the report says so."""
    from stip_rt.io.sink_files import FrameFile

    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    config = load_run_config(pose="none", detections=str(gt), max_frames=30)
    out = tmp_path / "out"
    vdir = out / "a"
    assert process_video(str(one_video / "a.avi"), str(vdir), config, ["jsonl"]).status == "done"
    before = {p.name: p.read_bytes() for p in vdir.iterdir()}
    real_write, writes = FrameFile.write, []

    def write(self, fill):  # type: ignore[no-untyped-def]
        writes.append(1)
        if len(writes) == 5:  # half way through the video
            if how == "worker stop":
                batch.request_stop()
            else:
                raise KeyboardInterrupt
        return real_write(self, fill)

    monkeypatch.setattr(FrameFile, "write", write)
    seen: list[batch.VideoResult] = []
    try:
        if how == "worker stop":
            seen.append(process_video(str(one_video / "a.avi"), str(vdir), config, ["jsonl"], force=True))
        else:
            with pytest.raises(KeyboardInterrupt):
                batch.run_batch([one_video / "a.avi"], out, config, ["jsonl"], force=True, on_result=seen.append)
    finally:
        batch._STOP.clear()
    [redo] = seen
    assert redo.status == "interrupted" and "not done" in (redo.error or "")
    assert (redo.error or "").endswith(f"the outputs of the earlier run and its {DONE} are kept"), redo.error
    assert {p.name: p.read_bytes() for p in vdir.iterdir()} == before
