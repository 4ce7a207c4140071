"""``stip-rt batch``: resumable, keeps partial outputs of a failed video and goes on, process pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stip_rt.batch import DONE, ERROR, find_videos, format_table, output_names, run_batch
from stip_rt.cli import main
from stip_rt.errors import ConfigError, SourceError
from stip_rt.run_config import RunConfig
from stip_rt.run_load import load_run_config


@pytest.fixture()
def videos(tmp_path: Path, data_dir: Path) -> Path:
    """a.avi, b.avi (links to vtest.avi), c.avi (vtest cut after ~27 frames), d.mp4 (a text file)."""
    folder = tmp_path / "videos"
    folder.mkdir()
    vtest = data_dir / "opencv_samples" / "vtest.avi"
    (folder / "a.avi").symlink_to(vtest)
    (folder / "b.avi").symlink_to(vtest)
    data = vtest.read_bytes()
    (folder / "c.avi").write_bytes(data[: len(data) // 20])
    (folder / "d.mp4").write_text("not a video")
    (folder / "notes.txt").write_text("not picked up")
    return folder


def _argv(videos: Path, out: Path, data_dir: Path, *extra: str) -> list[str]:
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    return [
        "batch",
        str(videos),
        "--out-dir",
        str(out),
        "--format",
        "jsonl,csv",
        "--model",
        "none",
        "--detections",
        str(gt),
        "--max-frames",
        "40",
        *extra,
    ]


def test_batch_resumes_and_goes_on_after_failures(
    videos: Path, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(_argv(videos, out, data_dir)) == 1  # two videos failed
    table = capsys.readouterr().out
    assert "4 videos: 2 done, 0 skipped, 2 failed" in table
    for name in ("a", "b"):
        marker = json.loads((out / name / DONE).read_text())
        assert marker["frames"] == 40 and marker["formats"] == ["jsonl", "csv"]
        assert len((out / name / f"{name}.jsonl").read_text().splitlines()) == 41
        assert (out / name / f"{name}.csv").is_file()
    # the truncated video: partial outputs kept, an error file, no completion marker
    assert not (out / "c" / DONE).exists()
    assert "c.avi" in (out / "c" / ERROR).read_text()
    partial = [json.loads(x) for x in (out / "c" / "c.jsonl").read_text().splitlines()]
    assert len(partial) > 10
    assert "d.mp4" in (out / "d" / ERROR).read_text()

    # second run: finished videos are skipped, failed ones are tried again
    mtime = (out / "a" / "a.jsonl").stat().st_mtime_ns
    assert main(_argv(videos, out, data_dir)) == 1
    assert "4 videos: 0 done, 2 skipped, 2 failed" in capsys.readouterr().out
    assert (out / "a" / "a.jsonl").stat().st_mtime_ns == mtime


def test_batch_in_two_processes(tmp_path: Path, data_dir: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    for name in ("x.avi", "y.avi"):
        (folder / name).symlink_to(data_dir / "opencv_samples" / "vtest.avi")
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    config = load_run_config(pose="none", detections=str(gt), max_frames=5)
    seen = []
    results = run_batch(
        find_videos(folder), tmp_path / "out", config, ["jsonl"], jobs=2, devices=["cpu"], on_result=seen.append
    )
    assert [r.status for r in results] == ["done", "done"] and len(seen) == 2
    assert [Path(r.source).name for r in results] == ["x.avi", "y.avi"]
    assert all(r.frames == 5 and r.device == "cpu" for r in results)
    assert "2 videos: 2 done" in format_table(results)


def test_inputs_and_names(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="nothing"):
        find_videos(tmp_path / "nothing")
    with pytest.raises(SourceError, match="no videos"):
        find_videos(tmp_path)
    names = output_names([Path("a/clip.mp4"), Path("b/clip.mp4"), Path("b/other.mp4")])
    assert sorted(names.values()) == ["a_clip", "b_clip", "other"]
    with pytest.raises(ConfigError, match="unknown format 'jsn'"):
        run_batch([], tmp_path, RunConfig(), ["jsn"])


def test_formats_are_checked_once_before_any_video(tmp_path: Path, data_dir: Path) -> None:
    """A format list the run cannot write is refused before any video is touched: a finished
    video keeps its outputs and its done marker."""
    from stip_rt.batch import batch_formats

    box_only = load_run_config(pose="none")
    assert batch_formats(["jsonl", "csv", "jsonl"], box_only, False) == ("jsonl", "csv")
    assert batch_formats([], box_only, True) == ()  # the annotated video alone
    with pytest.raises(ConfigError, match="no output format given"):
        batch_formats([], box_only, False)
    with pytest.raises(ConfigError, match=r"format 'openpose' .* needs keypoints, but the pose model is none"):
        batch_formats(["jsonl", "openpose"], box_only, False)
    assert batch_formats(["coco"], RunConfig(), False) == ("coco",)

    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "x.avi").symlink_to(data_dir / "opencv_samples" / "vtest.avi")
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    config = load_run_config(pose="none", detections=str(gt), max_frames=5)
    out = tmp_path / "out"
    results = run_batch(find_videos(folder), out, config, ["jsonl"])
    assert [r.status for r in results] == ["done"]
    assert config.runtime.device == "auto" and results[0].device in ("cpu", "cuda")  # the device used, not 'auto'
    before = {p.name: p.read_bytes() for p in (out / "x").iterdir()}
    with pytest.raises(ConfigError, match="format 'coco'"):
        run_batch(find_videos(folder), out, config, ["jsonl", "coco"])
    assert {p.name: p.read_bytes() for p in (out / "x").iterdir()} == before


def test_resume_redoes_a_video_whose_input_or_outputs_changed(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A finished video is skipped only while its input is the same file and its outputs are all
    there; the same detections file given by a relative or an absolute path is the same option."""
    import os
    import shutil

    folder = tmp_path / "v"
    folder.mkdir()
    shutil.copy(data_dir / "opencv_samples" / "vtest.avi", folder / "x.avi")
    shutil.copy(data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt", tmp_path / "gt.txt")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"

    def run(detections: str) -> str:
        config = load_run_config(pose="none", detections=detections, max_frames=3)
        return run_batch(find_videos(folder), out, config, ["jsonl", "csv"])[0].status

    assert run("gt.txt") == "done"
    assert run(str(tmp_path / "gt.txt")) == "skipped"  # relative then absolute: one file
    (out / "x" / "x.csv").unlink()
    with caplog.at_level("WARNING"):
        assert run("gt.txt") == "done"
    assert "an output is missing: x.csv" in caplog.text
    assert run("gt.txt") == "skipped"
    st = (folder / "x.avi").stat()
    os.utime(folder / "x.avi", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # replaced or edited
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert run("gt.txt") == "done"
    assert "the video changed since" in caplog.text


def test_ctrl_c_in_process_reports_the_interrupted_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With one job, Ctrl-C during a video reports it as interrupted (as the worker processes do)."""
    import stip_rt.batch as batch

    def interrupted(*args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "process_video", interrupted)
    (tmp_path / "x.avi").write_bytes(b"")
    seen = []
    with pytest.raises(KeyboardInterrupt):
        run_batch([tmp_path / "x.avi"], tmp_path / "out", RunConfig(), ["jsonl"], on_result=seen.append)
    assert [(r.status, Path(r.source).name) for r in seen] == [("interrupted", "x.avi")]
    assert "not done" in (seen[0].error or "")


def test_inputs_leave_out_hidden_files_and_the_output_folder(tmp_path: Path, data_dir: Path) -> None:
    """A folder gives what its glob gives (no `._clip.mp4` of macOS, no hidden files), and the files
    inside the output folder (annotated videos of an earlier run) are never inputs."""
    folder = tmp_path / "v"
    (folder / "day1").mkdir(parents=True)
    (folder / "day1" / "a.avi").symlink_to(data_dir / "opencv_samples" / "vtest.avi")
    (folder / "day1" / "._a.avi").write_bytes(b"\0\5\26\7")
    assert find_videos(folder / "day1") == find_videos(str(folder / "day1" / "*.avi")) == [folder / "day1" / "a.avi"]
    results = folder / "results"
    (results / "a").mkdir(parents=True)
    (results / "a" / "a.avi").write_bytes(b"an annotated video")
    pattern = str(folder / "**" / "*.avi")
    assert find_videos(pattern) == [folder / "day1" / "a.avi", results / "a" / "a.avi"]
    assert find_videos(pattern, exclude=results) == [folder / "day1" / "a.avi"]
    with pytest.raises(SourceError, match="1 files inside the output folder"):
        find_videos(results / "a" / "a.avi", exclude=results)


def test_a_video_interrupted_in_its_worker_is_counted_and_fails_the_exit_code(
    videos: Path, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker stopped on its own (SIGTERM to that process) ends its video `interrupted` while the
    batch goes on: the summary says so and the exit code is not 0."""
    import stip_rt.batch as batch
    from stip_rt.batch import VideoResult

    def process(source: str, video_dir: str, *args: object) -> VideoResult:
        status = "interrupted" if source.endswith("b.avi") else "done"
        return VideoResult(source, status, out_dir=video_dir, error="interrupted after 3 frames; not done")  # type: ignore[arg-type]

    monkeypatch.setattr(batch, "process_video", process)
    assert main(_argv(videos, tmp_path / "out", data_dir)) == 1
    assert "4 videos: 3 done, 0 skipped, 0 failed, 1 interrupted (not done)" in capsys.readouterr().out


def test_ctrl_c_prints_what_was_done_and_what_is_left(
    videos: Path, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import stip_rt.batch as batch
    from stip_rt.batch import VideoResult

    def process(source: str, video_dir: str, *args: object) -> VideoResult:
        if source.endswith("b.avi"):
            raise KeyboardInterrupt
        return VideoResult(source, "done", frames=40, out_dir=video_dir)

    monkeypatch.setattr(batch, "process_video", process)
    assert main(_argv(videos, tmp_path / "out", data_dir)) == 130
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "2 videos: 1 done, 0 skipped, 0 failed, 1 interrupted (not done)",
        "2 videos not started; run the same command again to finish the batch (the videos done are skipped)",
    ]
