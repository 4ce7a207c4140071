"""What a consumer finds in an output when the run stops part-way: whole frames only, no NaN, no float noise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from io_fakes import make_results, make_run, make_tracks

from stip_rt.errors import SinkError
from stip_rt.io.mot import read_mot
from stip_rt.io.read import read_tracks
from stip_rt.io.sinks import open_sink
from stip_rt.types import FrameResult, Tracks

PEOPLE = 8  # people per frame: a CSV frame is then ~4 kB, several pipe/buffer chunks' worth of rows

# Writes frames of argv[4] people to argv[1] under a file size limit of argv[2] bytes (set after the
# header is written): the write that crosses it is cut short by the kernel and the next one fails
# (EFBIG), as a full disk cuts a write short (ENOSPC).
_CHILD = """
import resource, sys
sys.path.insert(0, sys.argv[3])
from io_fakes import make_run, make_tracks
from stip_rt.errors import SinkError
from stip_rt.io.sinks import open_sink
from stip_rt.types import FrameResult

sink = open_sink(sys.argv[1])
sink.open(make_run())
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    for i in range(400):
        sink.write(FrameResult(i, i / 10, make_tracks(i, int(sys.argv[4])), {}))
except SinkError as e:
    print("write failed:", e)
finally:
    try:
        sink.close()
    except SinkError as e:
        print("close failed:", e)
"""


def _write_until_full(out: str, limit: int) -> str:
    pytest.importorskip("resource", reason="file size limits are POSIX")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, out, str(limit), str(Path(__file__).parent), str(PEOPLE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "failed: " in proc.stdout and "too large" in proc.stdout, proc.stdout  # the limit was hit
    return proc.stdout


@pytest.mark.parametrize("name", ["t.csv", "t.jsonl", "t.txt"])
def test_a_write_cut_short_leaves_whole_frames(tmp_path: Path, name: str) -> None:
    """A full disk (here: a file size limit) mid-frame: the file ends with the last whole frame,
    which every consumer reads as it is (pandas, read_tracks, read_mot), with no partial row."""
    path = tmp_path / name
    _write_until_full(str(path), 20_011)
    text = path.read_text()
    assert text.endswith("\n") and 0 < len(text) <= 20_011
    if name.endswith(".csv"):
        df = pd.read_csv(path)
        assert not df.isna().any().any()
        counts = df.groupby("frame").size()
        frames = counts.index.tolist()
    elif name.endswith(".jsonl"):
        tf = read_tracks(path)
        assert not tf.truncated
        counts = pd.Series([len(f.tracks) for f in tf.frames])
        frames = [f.frame for f in tf.frames]
    else:
        seq = read_mot(path)
        counts = pd.Series(seq.frames).value_counts().sort_index()
        frames = (counts.index - 1).tolist()
    assert frames == list(range(len(frames))) and len(frames) > 1
    assert (counts == PEOPLE).all(), counts


@pytest.mark.parametrize("name", ["op/", "t.json", "t.coco.json"])
def test_a_file_written_whole_is_never_left_half_written(tmp_path: Path, name: str) -> None:
    """OpenPose frame files, JSON and COCO documents: a write that fails leaves no cut-off file at
    the output's name (and no temporary file)."""
    out = tmp_path / name
    _write_until_full(f"{tmp_path}/{name}", 2_000)  # smaller than one OpenPose frame file
    files = list(out.iterdir()) if name.endswith("/") else [p for p in tmp_path.iterdir() if p.name != "t.json.lock"]
    for f in files:
        assert not f.name.startswith("."), f"temporary file left: {f}"
        json.loads(f.read_text())  # every file there is whole


def _nan_result(index: int) -> FrameResult:
    t = make_tracks(index, 2)
    t.boxes[1, 2] = np.nan
    return FrameResult(index, index / 10, t, {})


@pytest.mark.parametrize("name", ["t.csv", "t.txt"])
def test_csv_and_mot_refuse_nan_naming_the_frame(tmp_path: Path, name: str) -> None:
    """docs/formats.md: NaN/infinity are never written (a SinkError names the frame), as in JSON."""
    path = tmp_path / name
    sink = open_sink(path)
    sink.open(make_run())
    sink.write(make_results(2)[1])
    with pytest.raises(SinkError, match=rf"{name}: frame 7: .*non-finite"):
        sink.write(_nan_result(7))
    sink.close()
    text = path.read_text()
    assert "nan" not in text.lower() and "inf" not in text.lower()
    assert len(text.splitlines()) == 1 + name.endswith(".csv")  # the good frame's row (and the CSV header)


def test_csv_refuses_a_non_finite_time(tmp_path: Path) -> None:
    sink = open_sink(tmp_path / "t.csv")
    sink.open(make_run())
    with pytest.raises(SinkError, match=r"frame 3: .*non-finite"):
        sink.write(FrameResult(3, float("inf"), make_tracks(3, 1), {}))
    sink.close()


def test_coco_bbox_has_no_float_noise(tmp_path: Path) -> None:
    """The bbox [x, y, w, h] is rounded to 2 decimals like every pixel value: w = 530.03 − 499.0 is
    31.03, not 31.029999999999973."""
    t = make_tracks(0, 1)
    boxes = np.array([[499.0, 158.0, 530.03, 233.17]], np.float32)
    t = Tracks(t.ids, boxes, t.box_scores, t.keypoints, t.scores, t.det_index)
    path = tmp_path / "t.coco.json"
    sink = open_sink(path)
    sink.open(make_run())
    sink.write(FrameResult(0, 0.0, t, {}))
    sink.close()
    [entry] = json.loads(path.read_text())
    assert entry["bbox"] == [499.0, 158.0, 31.03, 75.17]
    assert "31.03," in path.read_text()
