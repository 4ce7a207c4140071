"""Real `stip-rt` processes and real signals: SIGTERM/SIGHUP/SIGINT finalise every output, and two
live runs never write the same file. Each test checks the exit code, the one-line message and
what is on disk (JSON parses, the mp4 opens and has as many frames as the JSONL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

REPO = Path(__file__).resolve().parents[2]


def _stip_rt(args: list[str], cwd: Path, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "stip_rt.cli", *args]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """Until ``path`` has ``n`` lines (the run is well under way); fails if the run ends first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.is_file() and len(path.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {path} had {n} lines: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{path} did not reach {n} lines")


def _jsonl_frames(path: Path) -> list[int]:
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return [rec["frame"] for rec in lines[1:]]


def _mp4_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".lock", ".tmp")) or ".partial" in p.name)


@pytest.mark.parametrize(
    ("sig", "code", "pose"),
    [(signal.SIGTERM, 143, False), (signal.SIGHUP, 129, True), (signal.SIGINT, 130, False)],
)
def test_track_signal_finalises_every_output(
    tmp_path: Path, data_dir: Path, fixtures_dir: Path, sig: int, code: int, pose: bool
) -> None:
    vtest = data_dir / "opencv_samples" / "vtest.avi"
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    args = ["track", str(vtest), "--detections", str(gt), "-o", "t.json", "-o", "t.jsonl", "-o", "t.csv"]
    args += ["-o", "t.txt", "--video", "t.mp4"]
    if pose:  # a small pose network with random weights (scores ~0: thresholds at 0 keep its people)
        args += ["--model", str(fixtures_dir / "official_parity" / "stipnet_c16_crowdpose14.json"), "--weights"]
        args += ["random", "-o", "t.coco.json", "--set", "track.high_score=0", "--set", "track.low_score=0"]
        args += ["--set", "track.new_track_score=0"]
    else:
        args += ["--pose", "none"]
    proc = _stip_rt(args, tmp_path)
    _wait_for_lines(tmp_path / "t.jsonl", 15, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.splitlines()[-1] == (
        f"stip-rt track: interrupted ({signal.Signals(sig).name}); the outputs hold every frame finished before it"
    )
    assert "Traceback" not in err
    frames = _jsonl_frames(tmp_path / "t.jsonl")
    assert 14 <= len(frames) < 795 and frames == list(range(len(frames)))
    doc = json.loads((tmp_path / "t.json").read_text())
    assert [f["frame"] for f in doc["frames"]] == frames
    assert _mp4_frames(tmp_path / "t.mp4") == len(frames)
    csv_frames = {int(line.split(",")[0]) for line in (tmp_path / "t.csv").read_text().splitlines()[1:]}
    assert csv_frames <= set(frames) and max(csv_frames) >= len(frames) - 3  # CSV rows only for frames with people
    if pose:
        coco = json.loads((tmp_path / "t.coco.json").read_text())
        assert coco and {e["image_id"] for e in coco} <= set(frames)
    assert _leftovers(tmp_path) == []


def test_second_run_on_the_same_outputs_is_refused(tmp_path: Path, data_dir: Path) -> None:
    vtest = data_dir / "opencv_samples" / "vtest.avi"
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    # the first run reads the video through a pipe that this test feeds, so it is still writing
    # (holding its outputs) for as long as the second run needs to start and be refused
    fifo = tmp_path / "feed.avi"
    os.mkfifo(fifo)
    data = vtest.read_bytes()
    go_on = threading.Event()

    def feed() -> None:
        try:
            with open(fifo, "wb") as f:
                f.write(data[: len(data) // 3])
                f.flush()
                go_on.wait(300)
                f.write(data[len(data) // 3 :])
        except BrokenPipeError:  # the run stopped reading (after --max-frames)
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    outs = ["--pose", "none", "--detections", str(gt), "-N", "400", "-o", "t.jsonl", "--video", "t.mp4"]
    first = _stip_rt(["track", str(fifo), *outs], tmp_path)
    _wait_for_lines(tmp_path / "t.jsonl", 5, first)
    second = _stip_rt(["track", str(vtest), *outs], tmp_path)
    _, err2 = second.communicate(timeout=120)
    go_on.set()
    _, err1 = first.communicate(timeout=300)
    assert second.returncode == 2, err2
    assert err2.splitlines()[-1] == (
        f"stip-rt track: error: t.jsonl: another run (process {first.pid}) is writing this output right now; "
        "wait for it to finish or choose another name (lock: t.jsonl.lock)"
    )
    assert first.returncode == 0, err1
    assert _jsonl_frames(tmp_path / "t.jsonl") == list(range(400))  # no duplicate or bad line
    assert _mp4_frames(tmp_path / "t.mp4") == 400
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("sig", "group", "jobs"), [(signal.SIGTERM, False, 2), (signal.SIGINT, True, 2), (signal.SIGHUP, False, 1)]
)
def test_batch_interrupted_leaves_nothing_unplayable_and_resumes(
    tmp_path: Path, data_dir: Path, sig: int, group: bool, jobs: int
) -> None:
    """SIGTERM to the batch process alone (`timeout`, docker), Ctrl-C to the whole group (a terminal),
    SIGHUP to a batch that runs its videos in its own process."""
    vtest = data_dir / "opencv_samples" / "vtest.avi"
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b", "c"):
        (videos / f"{name}.avi").symlink_to(vtest)
    out = tmp_path / "out"
    args = ["batch", str(videos), "--out-dir", str(out), "--format", "json,jsonl,csv", "--video", "--pose", "none"]
    args += ["--detections", str(gt), "--max-frames", "300", "--jobs", str(jobs)]
    proc = _stip_rt(args, tmp_path, start_new_session=True)
    _wait_for_lines(out / "a" / ".partial" / "a.jsonl", 20, proc, timeout=240)  # staged until the video ends
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + sig, err
    assert err.splitlines()[-1].startswith(f"stip-rt batch: interrupted ({signal.Signals(sig).name})")
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    interrupted = []
    for name in ("a", "b", "c"):
        folder = out / name
        if not folder.exists():
            continue
        if not (folder / "done.json").exists():
            interrupted.append(name)
            assert "interrupted" in (folder / "error.txt").read_text()
        if (folder / f"{name}.jsonl").exists():
            frames = _jsonl_frames(folder / f"{name}.jsonl")
            assert frames == list(range(len(frames)))
            assert [f["frame"] for f in json.loads((folder / f"{name}.json").read_text())["frames"]] == frames
            if frames:  # playable, every frame written
                assert _mp4_frames(folder / f"{name}.mp4") == len(frames)
            else:  # stopped before its first frame: no video at all (never an empty, unplayable one)
                assert not (folder / f"{name}.mp4").exists()
    assert "a" in interrupted
    assert _leftovers(out) == []

    again = _stip_rt(args, tmp_path)
    table, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "3 videos: " in table and " 0 failed" in table
    for name in ("a", "b", "c"):
        assert (out / name / "done.json").is_file() and not (out / name / "error.txt").exists()
        assert _jsonl_frames(out / name / f"{name}.jsonl") == list(range(300))
        assert _mp4_frames(out / name / f"{name}.mp4") == 300
