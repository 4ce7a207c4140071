"""``stip-rt track`` end to end on the shared videos, writing every format."""

from __future__ import annotations

import json
from pathlib import Path

import av
import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from stip_rt.cli import main
from stip_rt.geometry import iou_matrix
from stip_rt.io.tracks_format import load_schema

TINY_HRNET = "official_parity/hrnet_c16_coco17.json"  # a parity-sized HRNet (128×96, C=16)
# random weights give keypoint scores near 0, hence person scores near 0: let every person track
TRACK_ALL = [
    "--set",
    "tracker.min_hits=1",
    "--set",
    "tracker.high_score=0",
    "--set",
    "tracker.low_score=0",
    "--set",
    "tracker.new_track_score=0",
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs without --out save to ./runs/track/ by default: keep them out of the repository."""
    monkeypatch.chdir(tmp_path)


def read_jsonl(path: Path) -> tuple[dict, list[dict]]:
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return lines[0], lines[1:]


def validate_jsonl(path: Path) -> list[dict]:
    header, frames = read_jsonl(path)
    jsonschema.validate({**header, "frames": frames}, load_schema())
    return frames


def test_every_format_on_vtest(
    tmp_path: Path, vtest: Path, pets_gt: Path, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 4
    outs = {k: tmp_path / f"t.{k}" for k in ("json", "jsonl", "csv", "txt")}
    outs["coco"] = tmp_path / "t.coco.json"
    args = [
        "track",
        str(vtest),
        "--detections",
        str(pets_gt),
        "--model",
        str(fixtures_dir / TINY_HRNET),
        "--weights",
        "random",
        "--backend",
        "torch",
        "--max-frames",
        str(n),
        *TRACK_ALL,
        "--video",
        str(tmp_path / "t.mp4"),
        "-o",
        str(tmp_path / "openpose") + "/",
    ]
    for p in outs.values():
        args += ["-o", str(p)]
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert f"frames {n}" in summary and "tracks" in summary and "fps" in summary

    frames = validate_jsonl(outs["jsonl"])
    assert [f["frame"] for f in frames] == list(range(n))
    people = [p for f in frames for p in f["people"]]
    assert people and all(len(p["keypoints"]) == 17 for p in people)
    doc = json.loads(outs["json"].read_text())
    jsonschema.validate(doc, load_schema())
    assert len(doc["frames"]) == n and doc["skeleton"]["name"] == "coco17"
    csv = pd.read_csv(outs["csv"])
    assert set(csv["frame"]) <= set(range(n)) and {"track_id", "box_x1", "nose_x", "nose_score"} <= set(csv.columns)
    assert len(csv) == len(people)
    mot = outs["txt"].read_text().splitlines()
    assert len(mot) == len(people) and all(len(r.split(",")) == 10 for r in mot)
    with av.open(str(tmp_path / "t.mp4")) as c:
        decoded = sum(1 for _ in c.decode(video=0))
    assert decoded == n
    assert len(list((tmp_path / "openpose").glob("*.json"))) == n
    coco = json.loads(outs["coco"].read_text())
    assert len(coco) == len(people) and len(coco[0]["keypoints"]) == 17 * 3


def test_box_only_on_vtest(tmp_path: Path, vtest: Path, pets_gt: Path) -> None:
    n = 30
    out = tmp_path / "b.jsonl"
    assert (
        main(
            [
                "track",
                str(vtest),
                "--pose",
                "none",
                "--detections",
                str(pets_gt),
                "--max-frames",
                str(n),
                "-o",
                str(out),
                "-o",
                str(tmp_path / "b.csv"),
                "--video",
                str(tmp_path / "b.mp4"),
            ]
        )
        == 0
    )
    header, frames = read_jsonl(out)
    validate_jsonl(out)
    assert header["skeleton"] is None and [f["frame"] for f in frames] == list(range(n))
    assert all("keypoints" not in p for f in frames for p in f["people"])
    ids = {p["track_id"] for f in frames for p in f["people"]}
    assert 3 <= len(ids) <= 12  # PETS09 has ~6 people in the first frames; ids stay stable
    assert len(pd.read_csv(tmp_path / "b.csv")) == sum(len(f["people"]) for f in frames)


def test_box_only_tracks_start_at_their_ground_truth_first_frame(tmp_path: Path, vtest: Path, pets_gt: Path) -> None:
    # the whole of vtest.avi (PETS09-S2L1) with its ground-truth boxes: back-fill gives each track the
    # frames it spent tentative, so every gt person is output from the frame they enter
    csv, jsonl = tmp_path / "x.csv", tmp_path / "x.jsonl"
    args = ["track", str(vtest), "--pose", "none", "--detections", str(pets_gt), "-o", str(csv), "-o", str(jsonl)]
    assert main(args) == 0
    with av.open(str(vtest)) as c:
        decoded = sum(1 for _ in c.decode(video=0))
    assert [f["frame"] for f in validate_jsonl(jsonl)] == list(range(decoded))  # one record per frame, in order
    gt = pd.read_csv(pets_gt, header=None, usecols=range(6), names=["frame", "id", "x", "y", "w", "h"])
    gt["frame"] -= 1  # MOT frames count from 1
    out = pd.read_csv(csv)
    out_first = out.groupby("track_id")["frame"].min()
    firsts = gt.groupby("id")["frame"].min()
    assert len(firsts) >= 15 and sorted(firsts)[:6] == [0, 0, 0, 16, 21, 40]
    for gid, f in firsts.items():
        g = gt[(gt.id == gid) & (gt.frame == f)].iloc[0]
        o = out[out.frame == f]
        boxes = o[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy(np.float64)
        iou = iou_matrix(np.array([[g.x, g.y, g.x + g.w, g.y + g.h]]), boxes)[0] if len(o) else np.zeros(0)
        assert iou.size and iou.max() >= 0.5, f"gt person {gid} is not output on their first frame {f}"
        tid = int(o.track_id.iloc[int(iou.argmax())])
        assert out_first[tid] == f, f"gt person {gid} enters at frame {f}, their track {tid} at {out_first[tid]}"


def test_pose_model_with_random_weights_on_tud_campus(tmp_path: Path, data_dir: Path, fixtures_dir: Path) -> None:
    seq = data_dir / "mot15" / "TUD-Campus"
    out = tmp_path / "tud.jsonl"
    assert (
        main(
            [
                "track",
                str(seq / "TUD-Campus.mp4"),
                "--detections",
                str(seq / "gt" / "gt.txt"),
                "--model",
                str(fixtures_dir / TINY_HRNET),
                "--weights",
                "random",
                "--backend",
                "torch",
                "--max-frames",
                "3",
                *TRACK_ALL,
                "-o",
                str(out),
            ]
        )
        == 0
    )
    header, frames = read_jsonl(out)
    validate_jsonl(out)
    assert header["skeleton"]["name"] == "coco17" and header["model"]["pose"] == "hrnet_c16_coco17"
    assert len(frames) == 3
    people = [p for f in frames for p in f["people"]]
    assert people and all(len(p["keypoints"]) == 17 for p in people)


@pytest.mark.parametrize("video", ["mmpose_demo.mp4", "intel_one-by-one-person-detection.mp4"])
def test_sample_videos_with_random_detector(tmp_path: Path, data_dir: Path, video: str) -> None:
    out = tmp_path / "s.jsonl"
    assert (
        main(
            [
                "track",
                str(data_dir / "sample_videos" / video),
                "--model",
                "none",
                "--detector-weights",
                "random",
                "--max-frames",
                "2",
                "-o",
                str(out),
                "--video",
                str(tmp_path / "s.mp4"),
            ]
        )
        == 0
    )
    assert len(validate_jsonl(out)) == 2


def test_det_every_and_start(tmp_path: Path, vtest: Path, pets_gt: Path) -> None:
    out = tmp_path / "d.jsonl"
    assert (
        main(
            [
                "track",
                str(vtest),
                "--model",
                "none",
                "--detections",
                str(pets_gt),
                "--det-every",
                "3",
                "--start",
                "100",
                "--max-frames",
                "9",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    frames = validate_jsonl(out)
    assert [f["frame"] for f in frames] == list(range(100, 109))


def test_print_config_and_set(capsys: pytest.CaptureFixture[str], vtest: Path) -> None:
    assert (
        main(
            [
                "track",
                str(vtest),
                "--model",
                "none",
                "--set",
                "queue_size=3",
                "--set",
                "tracker.min_hits=4",
                "--print-config",
            ]
        )
        == 0
    )
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["queues"]["size"] == 3 and cfg["track"]["min_hits"] == 4 and cfg["pose"]["model"] == "none"
    assert cfg["source"]["uri"] == str(vtest) and set(cfg) == {
        "source",
        "detect",
        "pose",
        "runtime",
        "track",
        "outputs",
        "queues",
    }


def test_unknown_setting_is_one_error_with_suggestion(capsys: pytest.CaptureFixture[str], vtest: Path) -> None:
    assert main(["track", str(vtest), "--set", "det_evry=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "det_evry" in err[0] and "did you mean 'det_every'" in err[0]


def test_show_without_window_support_is_one_clear_error(
    capsys: pytest.CaptureFixture[str], vtest: Path, pets_gt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2

    def no_gui(*a: object) -> None:
        raise cv2.error("The function is not implemented")

    monkeypatch.setattr(cv2, "namedWindow", no_gui)  # what the headless build does
    assert main(["track", str(vtest), "--pose", "none", "--detections", str(pets_gt), "--show"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--show" in err[0] and "opencv-python" in err[0]


def test_python_api_iterates_tracked_frames(vtest: Path, pets_gt: Path, tmp_path: Path) -> None:
    import stip_rt
    from stip_rt.io.sinks import open_sink

    out = tmp_path / "api.jsonl"
    results = list(
        stip_rt.track_frames(str(vtest), pose="none", detections=str(pets_gt), max_frames=5, sinks=[open_sink(out)])
    )
    assert [r.index for r in results] == list(range(5))
    assert len(out.read_text().splitlines()) == 6


def test_batch_error_has_one_prefix(capsys: pytest.CaptureFixture[str], vtest: Path, tmp_path: Path) -> None:
    # run_batch's own messages start with "batch: "; the CLI adds "stip-rt batch: error: " once
    assert main(["batch", str(vtest), "--out-dir", str(tmp_path / "o"), "--format", "jsn", "--pose", "none"]) == 2
    line = capsys.readouterr().err.splitlines()[-1]
    assert line == "stip-rt batch: error: unknown format 'jsn' (choose from json, jsonl, csv, coco, mot, openpose)"


@pytest.mark.parametrize(
    ("text", "name", "why"),
    [("", "det.txt", "it holds no rows"), ("1,1,10,10,5,5,0,-1,-1,-1\n", "gt.txt", "all 1 rows are marked 0 = ignore")],
)
def test_empty_detections_file_warns_naming_it(
    tmp_path: Path, vtest: Path, caplog: pytest.LogCaptureFixture, text: str, name: str, why: str
) -> None:
    dets = tmp_path / name
    dets.write_text(text)
    assert main(["track", str(vtest), "--pose", "none", "--detections", str(dets), "-N", "3"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"detections {dets}: no boxes ({why}); no frame will have people" in warnings


def test_empty_coco_detections_warn_naming_the_file(
    tmp_path: Path, vtest: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dets = tmp_path / "dets.json"
    dets.write_text("[]")
    assert main(["track", str(vtest), "--pose", "none", "--detections", str(dets), "-N", "2"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"detections {dets}: no person boxes; no frame will have people" in warnings


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("1,1,10,10,5,5,1,-1,-1,-1\n\n2,1,10,10,5\n", "line 3: 5 columns, but the lines before it have 10"),
        ("1,1,10,10,5,5,1\n2,1,1a0,10,5,5,1\n", "line 2, column 3: '1a0' is not a number"),
    ],
)
def test_malformed_mot_detections_name_the_line(
    tmp_path: Path, vtest: Path, capsys: pytest.CaptureFixture[str], text: str, where: str
) -> None:
    dets = tmp_path / "det.txt"
    dets.write_text(text)
    assert main(["track", str(vtest), "--pose", "none", "--detections", str(dets), "-N", "2"]) == 2
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith("stip-rt track: error: ") and f"MOT file {dets}: " in line and where in line
    assert "usecols" not in line and "numpy" not in line


def test_output_lines_name_only_what_this_run_wrote(tmp_path: Path) -> None:
    """``output: PATH`` lines: never a file that does not exist (a video of no frame is not written)
    or an older file of that name."""
    import os
    import time

    from stip_rt.cli.track import output_paths
    from stip_rt.run_load import load_run_config

    config = load_run_config(overrides=[f"outputs.files=[{tmp_path}/a.jsonl, {tmp_path}/b.csv]",
                                        f"outputs.video={tmp_path}/v.mp4"])  # fmt: skip
    (tmp_path / "b.csv").write_text("an older run's\n")
    os.utime(tmp_path / "b.csv", (time.time() - 3600,) * 2)
    started = time.time()
    (tmp_path / "a.jsonl").write_text("{}\n")
    assert output_paths(config) == [f"{tmp_path}/a.jsonl", f"{tmp_path}/b.csv", f"{tmp_path}/v.mp4"]
    assert output_paths(config, started) == [f"{tmp_path}/a.jsonl"]


def test_trails_without_a_video_are_not_silently_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from stip_rt.api import open_outputs
    from stip_rt.run_config import OutputsConfig

    with caplog.at_level("WARNING", logger="stip_rt.api"):
        open_outputs(OutputsConfig(files=(str(tmp_path / "a.jsonl"),), trails=30))
    assert "trails (30 frames) are drawn on the annotated video, and this run writes none" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="stip_rt.api"):
        open_outputs(OutputsConfig(video=str(tmp_path / "v.mp4"), trails=30))
    assert "trails" not in caplog.text


def test_a_run_that_fails_at_once_leaves_no_empty_run_folders(
    tmp_path: Path, pets_gt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["track", "missing.mp4", "--pose", "none", "--detections", str(pets_gt)]) == 2
    assert list(tmp_path.iterdir()) == []  # not even runs/track/
    (tmp_path / "runs" / "track" / "earlier").mkdir(parents=True)
    assert main(["track", "missing.mp4", "--pose", "none", "--detections", str(pets_gt)]) == 2
    assert [p.name for p in (tmp_path / "runs" / "track").iterdir()] == ["earlier"]  # what existed stays
