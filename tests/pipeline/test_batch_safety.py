"""`stip-rt batch` overnight: a batch killed outright (SIGKILL) leaves nothing at an output's name and
the next run redoes that video; two batches on one folder share the videos out; a full disk is one
clear error per video, never a crash, and earlier videos keep their outputs."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stip_rt.batch import DONE, ERROR, PARTIAL, format_table, process_video, run_batch
from stip_rt.io.sink_files import FrameFile, OutputLock
from stip_rt.run_load import load_run_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def gt(data_dir: Path) -> Path:
    return data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"


@pytest.fixture()
def vtest(data_dir: Path) -> Path:
    return data_dir / "opencv_samples" / "vtest.avi"


_KILLED = """
import sys
from stip_rt.batch import process_video
from stip_rt.run_load import load_run_config
config = load_run_config(overrides=["queues.size=1", "source.buffer_size=1"], pose="none", detections=sys.argv[3])
process_video(sys.argv[1], sys.argv[2], config, ["jsonl", "csv", "mot"])
"""


@pytest.mark.slow
def test_a_video_killed_outright_leaves_nothing_at_an_output_name_and_is_redone(
    tmp_path: Path, vtest: Path, gt: Path
) -> None:
    vdir = tmp_path / "out" / "a"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(vtest), str(vdir), str(gt)], env=env)
    partial = vdir / PARTIAL / "a.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:  # wait until it is writing frames
        if partial.is_file() and partial.read_text().count("\n") > 20:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the video ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = sorted(p.name for p in vdir.iterdir())
    assert left == [PARTIAL], left  # no a.jsonl / a.csv / a.txt that looks complete, no done.json
    config = load_run_config(pose="none", detections=str(gt))
    result = process_video(str(vtest), str(vdir), config, ["jsonl", "csv", "mot"])
    assert result.status == "done" and result.frames == 795
    assert sorted(p.name for p in vdir.iterdir()) == ["a.csv", "a.jsonl", "a.txt", DONE]
    assert len((vdir / "a.jsonl").read_text().splitlines()) == 1 + 795
    assert not (tmp_path / "out" / "a.lock").exists()


def test_a_video_another_batch_is_doing_is_left_to_it(tmp_path: Path, vtest: Path, gt: Path) -> None:
    config = load_run_config(pose="none", detections=str(gt), max_frames=5)
    vdir = tmp_path / "out" / "a"
    other = OutputLock(vdir).acquire()  # what the other batch holds while it does the video
    try:
        busy = process_video(str(vtest), str(vdir), config, ["jsonl"])
    finally:
        other.release()
    assert busy.status == "busy" and f"process {os.getpid()}" in (busy.error or "")
    assert not vdir.exists()  # nothing touched: no error.txt beside the other run's outputs
    assert "1 busy" in format_table([busy])
    assert process_video(str(vtest), str(vdir), config, ["jsonl"]).status == "done"


def test_a_full_disk_fails_the_video_with_one_clear_error_and_keeps_earlier_outputs(
    tmp_path: Path, vtest: Path, gt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = _videos(tmp_path, vtest, "a.avi", "b.avi")
    config = load_run_config(pose="none", detections=str(gt), max_frames=20)
    out = tmp_path / "out"
    real_write = FrameFile.write
    real_write_text = Path.write_text
    state = {"full": False, "writes": 0}

    def write(self, fill):  # type: ignore[no-untyped-def]
        if "b" in self.path.name:
            state["writes"] += 1
            if state["writes"] > 5:
                state["full"] = True
        if state["full"]:
            raise_full = lambda _f: (_ for _ in ()).throw(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))  # noqa: E731
            return real_write(self, raise_full)
        return real_write(self, fill)

    def write_text(self, *a, **k):  # type: ignore[no-untyped-def]
        if state["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, *a, **k)

    monkeypatch.setattr(FrameFile, "write", write)
    monkeypatch.setattr(Path, "write_text", write_text)
    a, b = run_batch(sorted(videos.iterdir()), out, config, ["jsonl"])
    assert a.status == "done" and b.status == "failed"
    # the output the user asked for and the video, not the staging folder (gone after the video)
    assert b.error == f"{videos / 'b.avi'}: {out / 'b' / 'b.jsonl'}: cannot write (no space left on device)", b.error
    assert not (out / "b" / PARTIAL).exists() and (out / "b" / "b.jsonl").is_file()
    assert json.loads((out / "a" / DONE).read_text())["frames"] == 20  # the earlier video is intact
    assert len((out / "a" / "a.jsonl").read_text().splitlines()) == 21
    assert not (out / "b" / DONE).exists() and not (out / "b" / ERROR).exists()  # error.txt could not be written


def _videos(tmp_path: Path, vtest: Path, *names: str) -> Path:
    """A folder ``videos/`` holding ``names``, each a link to vtest.avi."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in names:
        (videos / name).symlink_to(vtest)
    return videos


def _refuse_b(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every output file of video b cannot be created (no permission)."""
    from stip_rt.io import sink_files

    def refusing_open(path, *a, **k):  # type: ignore[no-untyped-def]
        if Path(path).name.startswith("b."):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return open(path, *a, **k)

    monkeypatch.setattr(sink_files, "open", refusing_open, raising=False)


def test_an_output_that_cannot_be_created_is_named_as_the_user_asked_for_it(
    tmp_path: Path, vtest: Path, gt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = _videos(tmp_path, vtest, "a.avi", "b.avi")
    out = tmp_path / "out"
    _refuse_b(monkeypatch)
    config = load_run_config(pose="none", detections=str(gt), max_frames=5)
    a, b = run_batch(sorted(videos.iterdir()), out, config, ["csv", "jsonl"])
    assert a.status == "done" and b.status == "failed"
    expected = f"{videos / 'b.avi'}: {out / 'b' / 'b.csv'}: cannot write (permission denied)"
    assert b.error == expected and PARTIAL not in (b.error or "")
    assert (out / "b" / ERROR).read_text() == expected + "\n"
    table = format_table([b])  # the video in its own column, the note from the output on (cut at 80 characters)
    assert f"  {str(out / 'b' / 'b.csv')[:60]}" in table and str(videos) not in table
    assert sorted(p.name for p in (out / "a").iterdir()) == ["a.csv", "a.jsonl", DONE]


def test_a_redo_that_fails_keeps_the_earlier_finished_outputs(
    tmp_path: Path, vtest: Path, gt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done again with another format (or --force, or new options), a video whose redo fails (a full
    disk) keeps the complete outputs of its earlier run and their done.json; the next run redoes it."""
    videos = _videos(tmp_path, vtest, "b.avi")
    out = tmp_path / "out"
    config = load_run_config(pose="none", detections=str(gt), max_frames=5)
    assert [r.status for r in run_batch([videos / "b.avi"], out, config, ["jsonl"])] == ["done"]
    before = {p.name: p.read_bytes() for p in (out / "b").iterdir()}
    with monkeypatch.context() as m:
        _refuse_b(m)
        [redo] = run_batch([videos / "b.avi"], out, config, ["jsonl", "csv"])
    assert redo.status == "failed"
    assert redo.error == (
        f"{videos / 'b.avi'}: {out / 'b' / 'b.jsonl'}: cannot write (permission denied); "
        f"the outputs of the earlier run and its {DONE} are kept"
    )
    assert {p.name: p.read_bytes() for p in (out / "b").iterdir()} == before  # no .partial, no error.txt
    assert [r.status for r in run_batch([videos / "b.avi"], out, config, ["jsonl"])] == ["skipped"]
    assert [r.status for r in run_batch([videos / "b.avi"], out, config, ["jsonl", "csv"])] == ["done"]
    assert sorted(p.name for p in (out / "b").iterdir()) == ["b.csv", "b.jsonl", DONE]
