"""The sinks: every format written from synthetic results, read back and checked."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import av
import jsonschema
import numpy as np
import pandas as pd
import pytest
from io_fakes import make_results, make_run

from stip_rt.errors import SinkError
from stip_rt.io.base import Sink
from stip_rt.io.coco import write_coco_results
from stip_rt.io.formats import OUTPUT_FORMATS
from stip_rt.io.sinks import open_sink, sink_kind
from stip_rt.io.tracks_format import csv_columns, validator
from stip_rt.schemas import COCO17


def _run_sink(sink: Sink, results, run=None) -> None:
    sink.open(run or make_run())
    try:
        for r in results:
            sink.write(r)
    finally:
        sink.close()


@pytest.mark.parametrize(
    ("name", "kind"),
    [("a.json", "json"), ("a.jsonl", "jsonl"), ("a.csv", "csv"), ("a.coco.json", "coco"), ("a.txt", "mot"),
     ("a.mp4", "video"), ("a.AVI", "video"), ("a.mkv", "video"), ("frames/", "openpose")],
)  # fmt: skip
def test_kind_from_extension(name: str, kind: str) -> None:
    assert sink_kind(name) == kind


@pytest.mark.parametrize("kind", list(OUTPUT_FORMATS))
def test_format_table_is_what_open_sink_and_batch_use(tmp_path: Path, kind: str) -> None:
    from stip_rt.batch import FORMATS

    fmt = OUTPUT_FORMATS[kind]
    module, cls = fmt.sink.split(":")
    for suffix in fmt.suffixes:  # every suffix of the table selects its kind, and the kind its class
        assert sink_kind(f"x{suffix.upper()}") == kind
        sink = open_sink(tmp_path / f"x{suffix}")
        assert type(sink).__name__ == cls and type(sink).__module__ == f"stip_rt.io.{module}"
    assert type(open_sink(tmp_path / f"y{fmt.name_suffix}", kind=kind)).__name__ == cls
    assert fmt.is_folder == (kind == "openpose")
    if kind != "video":  # the annotated video is batch's own flag
        assert FORMATS[kind] == fmt.name_suffix
    assert "video" not in FORMATS


def test_unknown_extension_names_the_path(tmp_path: Path) -> None:
    known = r"use one of \.json \.jsonl \.csv \.coco\.json \.txt \.mp4 \.mkv \.mov \.avi,"
    with pytest.raises(SinkError, match=rf"out\.xyz.*extension '\.xyz'; {known}"):
        open_sink(tmp_path / "out.xyz")
    with pytest.raises(SinkError, match="did you mean 'jsonl'"):
        open_sink(tmp_path / "out.x", kind="jsonls")


@pytest.mark.parametrize("keypoints", [True, False])
def test_json_document_matches_schema_and_design(tmp_path: Path, keypoints: bool) -> None:
    path = tmp_path / "sub" / "tracks.json"
    results = make_results(6, keypoints=keypoints)
    _run_sink(open_sink(path), results, make_run(keypoints=keypoints))
    doc = json.loads(path.read_text())
    validator().validate(doc)
    assert doc["format"] == "stip-rt.tracks" and doc["version"] == 1
    assert doc["source"] == {"uri": "clip.mp4", "width": 320, "height": 240, "fps": 10.0, "frame_count": 6}
    assert doc["model"] == {"pose": "stip-w32-coco-256x192", "detector": "rtmdet-tiny", "backend": "torch cpu fp32"}
    assert [f["frame"] for f in doc["frames"]] == list(range(6))
    assert [len(f["people"]) for f in doc["frames"]] == [0, 1, 2, 3, 0, 1]
    person = doc["frames"][3]["people"][2]
    t = results[3].tracks
    assert person["track_id"] == 3
    assert person["box"] == pytest.approx(t.boxes[2].tolist(), abs=0.005)
    if keypoints:
        assert doc["skeleton"]["name"] == "coco17" and len(doc["skeleton"]["keypoints"]) == 17
        assert doc["skeleton"]["links"][0] == list(COCO17.links[0])
        assert np.allclose(person["keypoints"], t.keypoints[2], atol=0.005)
    else:
        assert doc["skeleton"] is None
        assert "keypoints" not in person
    assert not list(tmp_path.glob("sub/.*tmp"))  # the temporary file was renamed


def test_json_written_on_close_after_failure(tmp_path: Path) -> None:
    path = tmp_path / "tracks.json"
    sink = open_sink(path)
    sink.open(make_run())
    for r in make_results(3):
        sink.write(r)
    assert not path.exists()  # written atomically at the end only
    sink.close()  # e.g. from the pipeline's finally after a failure at frame 3
    sink.close()  # idempotent
    assert [f["frame"] for f in json.loads(path.read_text())["frames"]] == [0, 1, 2]


def test_jsonl_valid_after_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "tracks.jsonl"
    sink = open_sink(path)
    sink.open(make_run())
    header = validator("header")
    frame = validator("frame")
    results = make_results(5)
    for i, r in enumerate(results):
        sink.write(r)
        lines = path.read_text().splitlines()  # read while the sink is still open
        assert len(lines) == i + 2
        header.validate(json.loads(lines[0]))
        for line in lines[1:]:
            frame.validate(json.loads(line))
    assert "frames" not in json.loads(lines[0])
    sink.close()
    sink.close()


def test_jsonl_nan_is_a_sink_error_naming_the_frame(tmp_path: Path) -> None:
    sink = open_sink(tmp_path / "t.jsonl")
    sink.open(make_run())
    r = make_results(2)[1]
    r.tracks.scores[0] = np.nan
    with pytest.raises(SinkError, match="frame 1"):
        sink.write(r)
    sink.close()


@pytest.mark.parametrize("keypoints", [True, False])
def test_csv_reads_with_pandas(tmp_path: Path, keypoints: bool) -> None:
    path = tmp_path / "tracks.csv"
    results = make_results(6, keypoints=keypoints)
    _run_sink(open_sink(path), results, make_run(keypoints=keypoints))
    df = pd.read_csv(path)
    assert list(df.columns) == csv_columns(COCO17.keypoints if keypoints else None)
    assert len(df) == sum(len(r.tracks) for r in results)
    assert df["frame"].tolist() == [1, 2, 2, 3, 3, 3, 5]
    row = df[(df.frame == 3) & (df.track_id == 2)].iloc[0]
    t = results[3].tracks
    assert row["box_x1"] == pytest.approx(t.boxes[1, 0], abs=0.005)
    if keypoints:
        assert row["left_ankle_y"] == pytest.approx(t.keypoints[1, 15, 1], abs=0.005)
        assert row["nose_score"] == pytest.approx(t.keypoints[1, 0, 2], abs=5e-5)


def test_coco_results(tmp_path: Path) -> None:
    path = tmp_path / "res.coco.json"
    results = make_results(4)
    _run_sink(open_sink(path), results)
    data = json.loads(path.read_text())
    assert len(data) == 6
    assert {d["image_id"] for d in data} == {1, 2, 3}
    assert all(d["category_id"] == 1 and len(d["keypoints"]) == 51 for d in data)
    assert data[-1]["track_id"] == 3
    assert data[-1]["keypoints"][:3] == pytest.approx(results[3].tracks.keypoints[2, 0].tolist(), abs=5e-3)
    x1, y1, x2, y2 = results[3].tracks.boxes[2].tolist()
    assert data[-1]["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=5e-3)  # the track's box, xywh


def test_coco_output_is_rounded_like_every_tracks_output_and_refuses_nan(tmp_path: Path) -> None:
    path = tmp_path / "t.coco.json"
    _run_sink(open_sink(path), make_results(3))
    entries = json.loads(path.read_text())
    assert entries
    for e in entries:
        xy = [v for i, v in enumerate(e["keypoints"]) if i % 3 != 2]
        assert all(v == round(v, 2) for v in xy + e["bbox"]), e  # pixels: 2 decimals
        assert all(v == round(v, 4) for v in [*e["keypoints"][2::3], e["score"]]), e  # scores: 4 decimals
    with pytest.raises(SinkError, match=r"n.json: cannot write a non-finite number"):
        write_coco_results(tmp_path / "n.json", [{"image_id": 0, "score": float("nan")}])
    assert not (tmp_path / "n.json").exists()


def test_openpose_folder(tmp_path: Path) -> None:
    folder = tmp_path / "openpose"
    results = make_results(4)
    _run_sink(open_sink(folder, kind="openpose"), results)
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"clip_{i:012d}_keypoints.json" for i in range(4)]
    doc = json.loads((folder / "clip_000000000003_keypoints.json").read_text())
    assert [p["person_id"] for p in doc["people"]] == [[1], [2], [3]]
    kp = doc["people"][1]["pose_keypoints_2d"]
    assert len(kp) == 51
    assert kp[3:6] == pytest.approx(results[3].tracks.keypoints[1, 1].tolist(), abs=0.005)


@pytest.mark.parametrize("name", ["tracks.coco.json", "frames/"])
def test_keypoint_formats_refuse_box_only_runs(tmp_path: Path, name: str) -> None:
    sink = open_sink(f"{tmp_path}/{name}")
    with pytest.raises(SinkError, match="boxes only"):
        sink.open(make_run(keypoints=False))
    sink.close()


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_video_sink_fps_size_and_frame_count(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"annotated{ext}"
    results = make_results(12, image=True, size=(322, 242))
    sink = open_sink(path)
    assert sink.needs_image
    _run_sink(sink, results, make_run(size=(322, 242), fps=10.0))
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(s)]
        assert float(s.average_rate) == pytest.approx(10.0)
    assert len(frames) == 12
    assert frames[0].shape == (242, 322, 3)
    # people were drawn: frame 3 (3 people) differs from its flat grey background
    assert np.abs(frames[3].astype(int) - results[3].image.astype(int)).max() > 60


def test_video_sink_without_image_is_an_error(tmp_path: Path) -> None:
    sink = open_sink(tmp_path / "v.mp4")
    sink.open(make_run())
    with pytest.raises(SinkError, match="frame 0 came without its image"):
        sink.write(make_results(1)[0])
    sink.close()
    sink.close()


@pytest.fixture
def unwritable_dir(tmp_path: Path):
    """A folder this process cannot write to: a read-only folder, or /proc/1 when running as root."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        yield locked if not os.access(locked, os.W_OK) else Path("/proc/1")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("name", ["t.json", "t.jsonl", "t.csv", "t.coco.json", "t.mp4", "t.txt", "frames/"])
def test_unwritable_output_folder(unwritable_dir: Path, name: str) -> None:
    with pytest.raises(SinkError, match=re.escape(f"{unwritable_dir}") + ".* is not writable"):
        open_sink(f"{unwritable_dir}/out/{name}")


def test_output_path_through_a_file_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="afile is not a folder"):
        open_sink(blocker / "t.jsonl")


def test_mot_sink_is_registered(tmp_path: Path) -> None:
    path = tmp_path / "res.txt"
    _run_sink(open_sink(path), make_results(4))
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert len(rows) == 6
    assert rows[0][:2] == ["2", "1"]  # MOT frames are 1-based


def test_every_decoded_frame_gives_one_record_in_every_format(tmp_path: Path, data_dir: Path) -> None:
    """Source → (synthetic tracks) → every sink: n decoded frames give n records in each output."""
    from io_fakes import make_tracks

    from stip_rt.io.read import read_tracks
    from stip_rt.io.sources import open_source
    from stip_rt.types import FrameResult, RunInfo

    names = ["t.json", "t.jsonl", "t.csv", "t.coco.json", "t.txt", "op/", "v.mp4"]
    sinks = [open_sink(f"{tmp_path}/{n}") for n in names]
    with open_source(data_dir / "mot15" / "TUD-Campus" / "TUD-Campus.mp4") as src:
        run = RunInfo(src.info, COCO17, "test", "test", "test")
        for s in sinks:
            s.open(run)
        try:
            for frame in src:
                result = FrameResult(frame.index, frame.time, make_tracks(frame.index, 2), {}, frame.image)
                for s in sinks:
                    s.write(result)
        finally:
            for s in sinks:
                s.close()
    n = src.info.frame_count
    assert n == 71
    assert len(read_tracks(tmp_path / "t.json")) == n == len(read_tracks(tmp_path / "t.jsonl"))
    assert pd.read_csv(tmp_path / "t.csv")["frame"].nunique() == n
    assert len({d["image_id"] for d in json.loads((tmp_path / "t.coco.json").read_text())}) == n
    assert len((tmp_path / "t.txt").read_text().splitlines()) == 2 * n
    assert len(list((tmp_path / "op").glob("TUD-Campus_*_keypoints.json"))) == n
    with av.open(str(tmp_path / "v.mp4")) as c:
        s = c.streams.video[0]
        assert sum(1 for _ in c.decode(s)) == n
        assert (s.codec_context.width, s.codec_context.height, float(s.average_rate)) == (640, 480, 25.0)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("format",), "other"),
        (("frames", 1, "people", 0, "track_id"), 0),
        (("frames", 1, "people", 0, "keypoints", 0, 2), "0.5"),
        (("frames", 1, "people", 0, "box_score"), 1.5),
        (("frames", 1, "people", 0, "box"), [1, 2, 3]),
        (("source", "frame_count"), -1),
    ],
)
def test_schema_rejects_malformed_documents(tmp_path: Path, path: tuple, value: object) -> None:
    file = tmp_path / "t.json"
    _run_sink(open_sink(file), make_results(3))
    doc = json.loads(file.read_text())
    validator().validate(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(doc)
