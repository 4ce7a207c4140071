"""Outputs are never shared by two live runs, rewritten files appear only when complete, and new
files get the usual mode (umask) whichever way they are written."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from io_fakes import make_results, make_run

from stip_rt.errors import SinkError
from stip_rt.io.coco import write_coco_results
from stip_rt.io.sink_files import lock_output
from stip_rt.io.sinks import open_sink

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes and flock")


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("name", ["t.json", "t.coco.json", "t.jsonl", "t.csv", "t.txt", "t.mp4"])
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_every_output_respects_the_umask(tmp_path: Path, umask: None, name: str, mask: int) -> None:
    os.umask(mask)
    path = tmp_path / name
    sink = open_sink(path)
    sink.open(make_run())
    for r in make_results(3, image=True):
        sink.write(r)
    sink.close()
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp, partial or lock file left


def test_coco_writer_respects_the_umask(tmp_path: Path, umask: None) -> None:
    os.umask(0o027)
    path = write_coco_results(tmp_path / "r.json", [])
    assert path.stat().st_mode & 0o777 == 0o640


def test_video_appears_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "annotated.mp4"
    sink = open_sink(path)
    sink.open(make_run())
    for r in make_results(6, image=True):
        sink.write(r)
    assert not path.exists()  # while writing: only the hidden partial file (once the encoder has output)
    sink.close()
    with av.open(str(path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6
    assert not (tmp_path / ".annotated.partial.mp4").exists()


_HOLD = """
import sys, time
from pathlib import Path
from stip_rt.io.sink_files import lock_output
lock_output(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.parametrize("name", ["t.json", "t.jsonl", "t.csv", "t.txt", "t.mp4", "poses/"])
def test_output_written_by_another_live_process_is_refused(tmp_path: Path, name: str) -> None:
    path = f"{tmp_path}/{name}"
    proc = _holder(Path(path.rstrip("/")))
    try:
        sink = open_sink(path)
        with pytest.raises(SinkError) as err:
            sink.open(make_run())
        msg = str(err.value)
        assert msg.startswith(f"{path.rstrip('/')}: another run (process {proc.pid}) is writing this output")
        assert not Path(path.rstrip("/")).exists()  # nothing was truncated or created
    finally:
        proc.kill()  # SIGKILL: the lock file stays behind, the lock itself dies with the process
        proc.wait()
    lock = Path(path.rstrip("/") + ".lock")
    assert lock.exists()
    sink = open_sink(path)  # a stale lock file of a dead process does not block
    sink.open(make_run())
    if name == "poses/":
        sink.write(make_results(1)[0])
    sink.close()
    assert not lock.exists()


def test_lock_is_released_and_retaken(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    first = lock_output(path)
    with pytest.raises(SinkError, match=f"process {os.getpid()}"):
        lock_output(path)  # a second writer in the same process is refused too
    first.release()
    second = lock_output(path)
    assert (tmp_path / "out.jsonl.lock").read_text().strip() == str(os.getpid())
    second.release()
    assert not (tmp_path / "out.jsonl.lock").exists()


def test_frame_file_names_the_file_and_frees_its_lock_after_a_failure(tmp_path: Path) -> None:
    """The CSV and JSONL sinks' file: flushed after every frame, every OSError one SinkError naming
    it, and a failed open leaves no lock behind."""
    import errno

    from stip_rt.io.sink_files import FrameFile

    def disk_full(_f: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "out.csv"
    first = FrameFile(path)
    with pytest.raises(SinkError, match=r"write\(\) before open\(\)"):
        first.write(lambda f: f.write("x"))
    with pytest.raises(SinkError, match=rf"^{path}: cannot write \(no space left on device\)$"):
        first.open(disk_full)
    second = FrameFile(path)  # the failed open released the lock
    second.open(lambda f: f.write("header\n"))
    second.write(lambda f: f.write("frame 0\n"))
    assert path.read_text() == "header\nframe 0\n"  # on disk before close
    with pytest.raises(SinkError, match="no space left"):
        second.write(disk_full)
    second.close()
    second.close()
    assert not (tmp_path / "out.csv.lock").exists()


def _claimed_run(run: object) -> object:
    """The least :class:`~stip_rt.pipeline_config.PipelineParts` :func:`open_run` reads: the run and a source."""
    from types import SimpleNamespace

    return SimpleNamespace(run=run, source=SimpleNamespace(close=lambda: None), boxes_from_tracks=None)


@pytest.mark.parametrize("refusal", ["coco", "openpose", "locked"])
def test_a_refused_run_leaves_every_earlier_output_as_it_was(tmp_path: Path, refusal: str) -> None:
    """The sinks are all claimed (locks, format checks) before any creates or truncates a file: a
    run refused by its last output leaves the results of an earlier run untouched."""
    from stip_rt.pipeline_config import open_run

    names = ["t.jsonl", "t.json", "t.csv", "t.txt", "t.mp4"]
    for name in names:
        (tmp_path / name).write_text(f"earlier results of {name}\n")
    last = {"coco": "t.coco.json", "openpose": "poses/", "locked": "busy.jsonl"}[refusal]
    holder = _holder(tmp_path / last) if refusal == "locked" else None
    try:
        sinks = [open_sink(tmp_path / n) for n in names] + [open_sink(f"{tmp_path}/{last}")]
        with pytest.raises(SinkError, match=r"needs? keypoints|another run"):
            open_run(_claimed_run(make_run(keypoints=False)), sinks, 1)  # type: ignore[arg-type]
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
    for name in names:
        assert (tmp_path / name).read_text() == f"earlier results of {name}\n"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(names + (["busy.jsonl.lock"] if holder else []))  # no lock, temp or partial file of ours


def test_claimed_sinks_open_and_write_as_before(tmp_path: Path) -> None:
    """Claiming, then opening, then writing gives the same files as opening alone."""
    from stip_rt.pipeline_config import open_run

    for sub in ("claimed", "opened"):
        (tmp_path / sub).mkdir()
    results = make_results(4)
    claimed = [open_sink(tmp_path / "claimed" / n) for n in ("t.jsonl", "t.json", "t.csv", "t.txt", "t.coco.json")]
    open_run(_claimed_run(make_run()), claimed, 1)  # type: ignore[arg-type]
    opened = [open_sink(tmp_path / "opened" / n) for n in ("t.jsonl", "t.json", "t.csv", "t.txt", "t.coco.json")]
    for sink in opened:
        sink.open(make_run())
    for sink in claimed + opened:
        for r in results:
            sink.write(r)
        sink.close()
    for n in ("t.jsonl", "t.json", "t.csv", "t.txt", "t.coco.json"):
        assert (tmp_path / "claimed" / n).read_bytes() == (tmp_path / "opened" / n).read_bytes()
    assert not list(tmp_path.rglob("*.lock"))

