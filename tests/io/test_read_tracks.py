"""Readers: round trips through the sinks, crashed JSONL files, malformed files, the DataFrame helper."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from io_fakes import make_results, make_run

from stip_rt.errors import DataError
from stip_rt.io.read import TrackFile, read_tracks, tracks_to_dataframe
from stip_rt.io.sinks import open_sink
from stip_rt.schemas import COCO17


def _write(path: Path, results, run) -> Path:
    sink = open_sink(path)
    sink.open(run)
    for r in results:
        sink.write(r)
    sink.close()
    return path


@pytest.mark.parametrize("ext", [".json", ".jsonl"])
@pytest.mark.parametrize("keypoints", [True, False])
def test_round_trip(tmp_path: Path, ext: str, keypoints: bool) -> None:
    results = make_results(7, keypoints=keypoints)
    run = make_run(keypoints=keypoints)
    tf = read_tracks(_write(tmp_path / f"t{ext}", results, run))
    assert isinstance(tf, TrackFile) and not tf.truncated
    assert tf.source == run.source
    assert tf.model == {"pose": run.pose_model, "detector": run.detector, "backend": run.backend}
    assert len(tf) == 7
    for fr, r in zip(tf.frames, results):
        assert fr.frame == r.index and fr.time == pytest.approx(r.time)
        assert np.array_equal(fr.tracks.ids, r.tracks.ids)
        assert np.allclose(fr.tracks.boxes, r.tracks.boxes, atol=0.005)
        assert np.allclose(fr.tracks.scores, r.tracks.scores, atol=5e-5)
        if keypoints:
            assert fr.tracks.keypoints.shape == r.tracks.keypoints.shape
            assert np.allclose(fr.tracks.keypoints, r.tracks.keypoints, atol=0.005)
        else:
            assert fr.tracks.keypoints is None
    if keypoints:
        assert tf.skeleton.schema is COCO17 and tf.skeleton.links == COCO17.links
    else:
        assert tf.skeleton is None


def test_crashed_jsonl_reads_up_to_the_last_full_frame(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", make_results(5), make_run())
    text = path.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    path.write_text(text[: len(text) - len(last) // 2 - 1])  # cut mid-way through the last frame's line
    tf = read_tracks(path)
    assert tf.truncated and [f.frame for f in tf.frames] == [0, 1, 2, 3]


def test_damaged_middle_line_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", make_results(4), make_run())
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: line 3: invalid JSON")):
        read_tracks(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ('{"format": "other"}\n', "not a stip-rt.tracks file"),
        ('{"format": "stip-rt.tracks", "version": 9}\n', "version 9 is not supported"),
        ("[1, 2", "invalid JSON at line 1"),
    ],
)
def test_not_a_tracks_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=re.escape(f"{path}") + ".*" + re.escape(message)):
        read_tracks(path)


@pytest.mark.parametrize("keypoints", [True, False])
@pytest.mark.parametrize("name", ["t.csv", "t.dat"])  # found by its header row, whatever the extension
def test_csv_output_is_refused_with_what_to_read_instead(tmp_path: Path, keypoints: bool, name: str) -> None:
    path = _write(tmp_path / "t.csv", make_results(3, keypoints=keypoints), make_run(keypoints=keypoints))
    path = path.rename(tmp_path / name)
    with pytest.raises(DataError, match=re.escape(f"{path}: CSV tracks files are not read") + ".*frame rate.*\\.jsonl"):
        read_tracks(path)


def test_missing_file_and_malformed_frame(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.json: file not found"):
        read_tracks(tmp_path / "nope.json")
    path = _write(tmp_path / "t.json", make_results(3), make_run())
    doc = json.loads(path.read_text())
    del doc["frames"][2]["people"][0]["box"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"frames\[2\]: malformed frame"):
        read_tracks(path)


def test_dataframe_matches_csv(tmp_path: Path) -> None:
    results = make_results(6)
    run = make_run()
    csv = pd.read_csv(_write(tmp_path / "t.csv", results, run))
    df = tracks_to_dataframe(_write(tmp_path / "t.jsonl", results, run))
    assert list(df.columns) == list(csv.columns)
    pd.testing.assert_frame_equal(df, csv, check_dtype=False, atol=1e-6)


def test_dataframe_without_pandas_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "t.json", make_results(2), make_run())
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        tracks_to_dataframe(path)
