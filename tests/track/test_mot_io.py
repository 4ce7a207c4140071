"""MOTChallenge reading / writing and the MotSink."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt.errors import DataError, SinkError
from stip_rt.io.base import Sink
from stip_rt.io.mot import MotSequence, MotSink, read_mot, write_mot
from stip_rt.types import FrameResult, RunInfo, SourceInfo, Tracks


def test_read_shared_gt(data_dir):
    gt = read_mot(data_dir / "mot15/PETS09-S2L1/gt/gt.txt")
    assert len(gt) == 4650 and len(np.unique(gt.ids)) == 19 and gt.frames.max() == 795
    assert len(read_mot(data_dir / "mot15/PETS09-S2L1/gt/gt.txt", min_score=1)) == 4650 - 174
    tud = read_mot(data_dir / "mot15/TUD-Campus/gt/gt.txt")
    assert len(tud) == 359 and len(np.unique(tud.ids)) == 8


def test_round_trip(tmp_path):
    seq = MotSequence(np.array([1, 1, 2]), np.array([3, 1, 1]), np.array([[1.5, 2, 30, 60]] * 3), np.ones(3))
    write_mot(tmp_path / "r.txt", seq)
    first = (tmp_path / "r.txt").read_text().splitlines()[0]
    assert first == "1,3,1.50,2.00,30.00,60.00,1.0000,-1,-1,-1"
    back = read_mot(tmp_path / "r.txt")
    assert back.frames.tolist() == [1, 1, 2] and back.ids.tolist() == [1, 3, 1]  # sorted by frame, id
    np.testing.assert_allclose(back.boxes, seq.boxes)


ROW = "1,1,1,1,5,5,1\n"


@pytest.mark.parametrize(
    "text,msg",
    [
        ("1,2,3\n", "at least 6 columns"),
        ("0,1,1,1,5,5,1\n", "line 1: frame numbers must be integers >= 1"),
        ("1,1,1,1,5,5,1\n2,1,1,1,-5,5,1\n", "line 2: box width/height"),
        ("a,b,c,d,e,f\n", "not comma-separated numbers"),
        # errors give the line of the file (1-based, every line counted)
        pytest.param("\n\n\n" + ROW * 2 + "x,1,1,1,5,5,1\n", r"line 6, column 1: 'x'", id="text-after-blank-lines"),
        pytest.param("\n\n\n" + ROW * 2 + "0,1,1,1,5,5,1\n", "line 6: frame numbers", id="frame-after-blank-lines"),
        pytest.param(ROW + "\n  \n" + "1,1,1,1,-5,5,1\n", "line 4: box width/height", id="box-after-blank-lines"),
        pytest.param(ROW + "\n" + ROW + "1,1,1\n", "line 4: 3 columns", id="columns-after-a-blank-line"),
        # MOTChallenge files have no comments: a '#' line is refused where it is, whatever follows
        pytest.param("# header\n" + ROW + "x\n", r"line 1: '# header': MOTChallenge files have no", id="header"),
        pytest.param(ROW + "#\n" + ROW, "line 2: '#': MOTChallenge files have no comment", id="lone-hash"),
        pytest.param(ROW + "1,1,1,1,5,5,1 # note\n", r"line 2, column 7: '1 # note'", id="trailing-comment"),
    ],
)
def test_bad_files_name_the_file(tmp_path, text, msg):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(DataError, match=msg) as e:
        read_mot(p)
    assert "bad.txt" in str(e.value)


def test_blank_lines_are_skipped(tmp_path):
    p = tmp_path / "ok.txt"
    p.write_text("\n" + ROW + "\n\n" + "2,1,1,1,5,5,1\n\n")
    assert read_mot(p).frames.tolist() == [1, 2]


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.txt: not found"):
        read_mot(tmp_path / "nope.txt")


def _result(index: int, ids: list[int]) -> FrameResult:
    n = len(ids)
    boxes = np.array([[10.0 * i, 20, 10.0 * i + 5, 40] for i in range(n)], np.float32).reshape(n, 4)
    t = Tracks(
        np.array(ids, np.int64),
        boxes,
        np.ones(n, np.float32),
        None,
        np.full(n, 0.5, np.float32),
        np.arange(n, dtype=np.int64),
    )
    return FrameResult(index, index / 10, t)


def test_sink_writes_one_based_frames(tmp_path):
    sink = MotSink(tmp_path / "out" / "res.txt")
    assert isinstance(sink, Sink)
    sink.open(RunInfo(SourceInfo("v.mp4", 64, 48, 10.0), None))
    sink.write(_result(0, [1, 2]))
    sink.write(_result(1, []))
    sink.write(_result(2, [2]))
    sink.close()
    sink.close()  # twice is fine
    seq = read_mot(tmp_path / "out" / "res.txt")
    assert seq.frames.tolist() == [1, 1, 3] and seq.ids.tolist() == [1, 2, 2]
    np.testing.assert_allclose(seq.boxes[1], [10, 20, 5, 20])


def test_sink_errors(tmp_path):
    sink = MotSink(tmp_path / "x.txt")
    with pytest.raises(SinkError, match="before open"):
        sink.write(_result(0, [1]))
    (tmp_path / "dir").mkdir()
    with pytest.raises(SinkError, match="cannot open"):
        MotSink(tmp_path / "dir").open(RunInfo(SourceInfo("v", 1, 1, 1.0), None))
