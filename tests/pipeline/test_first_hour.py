"""The first hour of a new user: progress in log files, saving by default, the random-weight demo,
``export`` defaults, and the Python API's messages."""

from __future__ import annotations

import io
import json
import logging
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stip_rt.api import new_run_folder, save_outputs, source_stem, track_config
from stip_rt.cli import main
from stip_rt.cli.progress import Progress, format_seconds, progress_line
from stip_rt.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_specs import TINY_STIP

REPO = Path(__file__).resolve().parents[2]
TINY_HRNET = "official_parity/hrnet_c16_coco17.json"  # a parity-sized HRNet (128×96, C=16)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # runs/track/ and default export files land here


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()[1:]]


# --- progress when stderr is not a terminal -----------------------------------------------------


def test_progress_line_has_count_rate_elapsed_and_eta() -> None:
    assert format_seconds(75.4) == "1:15" and format_seconds(3725) == "1:02:05"
    line = progress_line(120, 795, 60.0, extra="people 6")
    assert line == "progress: 120/795 frames (15.1 %)  2.00 frames/s  elapsed 1:00  ETA 5:38  people 6"
    assert progress_line(30, None, 2.0) == "progress: 30 frames  15.0 frames/s  elapsed 0:02"  # live: no ETA


def test_progress_prints_a_line_every_interval_off_a_terminal() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = Progress(100, interval_s=5.0, stream=out, tty=False, clock=lambda: now[0])
    for _ in range(100):
        now[0] += 0.5  # 2 frames/s: a line every 10 frames
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[0].startswith("progress: 10/100 frames (10.0 %)  2.00 frames/s")
    assert lines[-1].endswith("elapsed 0:50  ETA 0:00")
    quiet = io.StringIO()
    with Progress(10, interval_s=0, stream=quiet, tty=False, clock=lambda: now[0]) as off:
        for _ in range(10):
            now[0] += 100.0
            off.update(1)
    assert quiet.getvalue() == ""


def test_track_into_a_log_prints_progress_lines_and_every_output(
    tmp_path: Path, vtest: Path, pets_gt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = [tmp_path / "a.jsonl", tmp_path / "a.csv"]
    argv = ["track", str(vtest), "--pose", "none", "--detections", str(pets_gt), "-N", "12"]
    assert main([*argv, "--progress-every", "1e-9", "-o", str(outs[0]), "-o", str(outs[1])]) == 0
    cap = capsys.readouterr()
    progress = [x for x in cap.err.splitlines() if x.startswith("progress: ")]
    assert len(progress) >= 10 and progress[-1].startswith("progress: 12/12 frames (100.0 %)")
    assert "ETA" in progress[0] and "people" in progress[0]
    assert cap.out.splitlines()[-2:] == [f"output: {outs[0]}", f"output: {outs[1]}"]
    assert main([*argv, "--progress-every", "-1", "-o", str(outs[0])]) == 2
    assert "--progress-every -1: expected seconds >= 0" in capsys.readouterr().err


def test_batch_into_a_log_prints_video_progress_and_every_output_folder(
    tmp_path: Path, vtest: Path, pets_gt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["batch", str(vtest), "--out-dir", str(tmp_path / "o"), "--pose", "none", "--detections", str(pets_gt)]
    assert main([*argv, "-N", "5", "--progress-every", "1e-9"]) == 0
    cap = capsys.readouterr()
    assert re.search(r"^done +\S+vtest\.avi  \[1/1, elapsed \d+:\d\d\]$", cap.err, re.M)
    assert re.search(r"^progress: 1/1 videos \(100\.0 %\)", cap.err, re.M)
    assert cap.out.splitlines()[-1] == f"output: {tmp_path / 'o' / 'vtest'}"


# --- saving by default ----------------------------------------------------------------------------


def test_track_without_outputs_saves_to_a_new_run_folder(
    tmp_path: Path, vtest: Path, pets_gt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["track", str(vtest), "--pose", "none", "--detections", str(pets_gt), "-N", "3"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    first = Path("runs/track/vtest")
    assert "saving to runs/track/vtest/" in cap.err
    assert cap.out.splitlines()[-2:] == [f"output: {first / 'vtest.jsonl'}", f"output: {first / 'vtest.mp4'}"]
    assert len(_jsonl(first / "vtest.jsonl")) == 3 and (first / "vtest.mp4").stat().st_size > 0
    mtime = (first / "vtest.jsonl").stat().st_mtime_ns
    assert main(argv) == 0  # a second run never overwrites the first
    assert (Path("runs/track/vtest2") / "vtest.jsonl").is_file()
    assert (first / "vtest.jsonl").stat().st_mtime_ns == mtime
    assert main([*argv, "--save-dir", "elsewhere", "--name", "take"]) == 0
    assert sorted(p.name for p in Path("elsewhere/take").iterdir()) == ["take.jsonl", "take.mp4"]
    capsys.readouterr()
    assert main([*argv, "--no-save"]) == 0
    assert "output: " not in capsys.readouterr().out
    assert sorted(p.name for p in Path("runs/track").iterdir()) == ["vtest", "vtest2"]
    assert main([*argv, "-o", "given.csv"]) == 0  # an output given: nothing else is saved
    assert Path("given.csv").is_file() and sorted(p.name for p in Path("runs/track").iterdir()) == ["vtest", "vtest2"]


def test_a_failed_run_leaves_no_empty_run_folder(tmp_path: Path, vtest: Path) -> None:
    dets = tmp_path / "det.txt"
    dets.write_text("1,-1,10,10,x,5,1,-1,-1,-1\n")  # malformed: the run fails before writing anything
    assert main(["track", str(vtest), "--pose", "none", "--detections", str(dets), "-N", "2"]) == 2
    assert not Path("runs/track/vtest").exists()


@pytest.mark.parametrize(
    ("uri", "stem"),
    [
        ("clips/vtest.avi", "vtest"),
        ("0", "camera0"),
        ("/dev/video2", "camera2"),
        ("rtsp://10.0.0.5:554/live/cam 1", "cam_1"),
        ("http://example.org/hls/stream.m3u8", "stream"),
        ("rtsp://10.0.0.5:554/", "10.0.0.5"),
        ("frames/*.jpg", "frames"),
    ],
)
def test_source_stem(uri: str, stem: str) -> None:
    assert source_stem(uri) == stem


def test_source_stem_of_a_folder_and_numbered_run_folders(tmp_path: Path) -> None:
    (tmp_path / "imgs.v1").mkdir()
    folder = str(tmp_path / "imgs.v1")
    assert source_stem(folder) == "imgs.v1" and source_stem(folder + "/") == "imgs.v1"
    assert [new_run_folder("r", "x").name for _ in range(3)] == ["x", "x2", "x3"]
    config, folder = save_outputs(track_config("cam.mp4"))
    assert folder == Path("runs/track/cam") and config.outputs.files == ("runs/track/cam/cam.jsonl",)
    assert config.outputs.video == "runs/track/cam/cam.mp4"
    for given in ({"out": "a.csv"}, {"video": "a.mp4"}, {"save": False}):
        assert save_outputs(track_config("cam.mp4", **given))[1] is None
    assert Path("runs/track").is_dir() and not Path("runs/track/cam2").exists()
    with pytest.raises(ConfigError, match=r"'outputs\.name' = a/b: expected a folder name"):
        track_config("cam.mp4", overrides=["outputs.name=a/b"])
    Path("afile").write_text("")
    with pytest.raises(ConfigError, match=r"'outputs\.save_dir' = afile: exists and is not a folder"):
        track_config("cam.mp4", save_dir="afile")


# --- the random-weight demo -----------------------------------------------------------------------


def test_random_pose_weights_keep_detections_as_people(
    tmp_path: Path, vtest: Path, pets_gt: Path, fixtures_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    argv = ["track", str(vtest), "--detections", str(pets_gt), "--model", str(fixtures_dir / TINY_HRNET)]
    argv += ["--weights", "random", "--backend", "torch", "-N", "4", "--no-save"]
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "-o", str(tmp_path / "box.jsonl")]) == 0  # pose.score_from: auto → box
    assert "skeletons are meaningless" in caplog.text and "person scores are the detector's box scores" in caplog.text
    frames = _jsonl(tmp_path / "box.jsonl")
    people = [p for f in frames for p in f["people"]]
    assert len({p["track_id"] for p in people}) >= 3 and all(p["score"] == p["box_score"] == 1.0 for p in people)
    # the official keypoint-based score of a random network drops everyone: what the setting avoids
    assert main([*argv, "--set", "pose.score_from=keypoints", "-o", str(tmp_path / "kp.jsonl")]) == 0
    assert not [p for f in _jsonl(tmp_path / "kp.jsonl") for p in f["people"]]
    with pytest.raises(ConfigError, match=r"'pose\.score_from' = boxes: not one of auto, keypoints, box"):
        track_config("v.mp4", overrides=["pose.score_from=boxes"])


def test_estimator_person_score_from_box_or_keypoints(fixtures_dir: Path) -> None:
    import torch

    from stip_rt.models import build_model
    from stip_rt.pose.estimator import PoseEstimator
    from stip_rt.types import Detections

    torch.manual_seed(0)
    model = build_model(str(fixtures_dir / TINY_HRNET)).eval()
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    dets = Detections(np.array([[10, 10, 90, 200], [150, 20, 260, 230]], np.float32), np.array([0.9, 0.7], np.float32))
    keypoints = PoseEstimator.from_model(model, flip_test=False)
    box = PoseEstimator(keypoints.backend, keypoints.spec, flip_test=False, score_from="box")
    assert np.array_equal(box(frame, dets).scores, dets.scores)
    kp = keypoints(frame, dets)
    assert np.array_equal(box(frame, dets).keypoints, kp.keypoints)  # only the person score differs
    assert np.all(kp.scores < dets.scores)
    with pytest.raises(ConfigError, match="score_from 'mean'"):
        PoseEstimator(box.backend, box.spec, score_from="mean")


def _readme_demo() -> list[str]:
    text = (REPO / "README.md").read_text()
    m = re.search(r"`(stip-rt track vtest\.avi --weights random --detections gt\.txt[^`]*)`", text)
    assert m, "README.md: the random-weight demo command is gone"
    return shlex.split(m.group(1))[1:]


def test_readme_demo_needs_no_tracker_flags() -> None:
    assert _readme_demo() == ["track", "vtest.avi", "--weights", "random", "--detections", "gt.txt"]


@pytest.mark.slow
def test_readme_demo_gives_people_and_tracks(
    tmp_path: Path, vtest: Path, pets_gt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "vtest.avi").symlink_to(vtest)
    (tmp_path / "gt.txt").symlink_to(pets_gt)
    assert main([*_readme_demo(), "--max-frames", "3", "--backend", "torch"]) == 0
    stats = capsys.readouterr().out
    people, tracks = (int(x) for x in re.search(r"people (\d+)\s+tracks (\d+)", stats).groups())  # type: ignore[union-attr]
    assert people >= 6 and tracks >= 3  # 3 people; tracks are confirmed on their second frame (min_hits 2)
    assert len(_jsonl(Path("runs/track/vtest/vtest.jsonl"))) == 3


# --- export ---------------------------------------------------------------------------------------


def test_export_without_out_or_weights_warns_and_writes_next_to_you(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_STIP))
    with caplog.at_level(logging.WARNING):
        assert main(["export", "--model", str(spec), "--format", "onnx"]) == 0
    assert "exporting RANDOM weights" in caplog.text and "pass --weights CHECKPOINT" in caplog.text
    assert Path("tiny.onnx").stat().st_size > 0
    assert "wrote tiny.onnx (standard flavour, random weights)" in capsys.readouterr().out


def test_export_of_a_zoo_model_says_how_to_get_its_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from stip_rt.cli.export import default_out, export_weights

    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))  # an empty cache
    with caplog.at_level(logging.WARNING):
        assert export_weights("hrnet-w32-coco-256x192", None) is None
        assert export_weights("stip-w32-coco-256x192", None) is None  # not downloadable: imported by hand
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("exporting RANDOM weights" in w for w in warnings)
    assert "`stip-rt weights fetch hrnet-w32-coco-256x192`" in warnings[0]
    assert "`stip-rt weights import FILE --name stip-w32-coco-256x192`" in warnings[1] and "fetch" not in warnings[1]
    assert export_weights("stip-w32-coco-256x192", "my.pth") == "my.pth"
    import stip_rt.weights
    from stip_rt.weights.manifest import load_zoo

    cached = stip_rt.weights.weights_dir() / load_zoo()["stip-w32-coco-256x192"].file  # imported earlier
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"a checkpoint")
    monkeypatch.setattr(stip_rt.weights, "weights_path", lambda name, fetch=True: cached)  # (its check passed)
    caplog.clear()
    assert export_weights("stip-w32-coco-256x192", None) == str(cached) and not caplog.records  # the cache, quietly
    assert default_out("stip-w32-coco-256x192", "onnx", "standard", False) == Path("stip-w32-coco-256x192.onnx")
    assert default_out("models/x.yaml", "onnx", "plugin", True) == Path("x.plugin.fp16.onnx")
    assert default_out("m", "engine", "plugin", True) == Path("m.plugin.engine")


# --- the Python API -------------------------------------------------------------------------------


def test_track_frames_takes_output_paths_and_names_itself(tmp_path: Path, vtest: Path, pets_gt: Path) -> None:
    import stip_rt

    kw = {"pose": "none", "detections": str(pets_gt), "max_frames": 3}
    assert len(list(stip_rt.track_frames(str(vtest), sinks=[str(tmp_path / "x.csv")], **kw))) == 3
    assert len(list(stip_rt.track_frames(str(vtest), sinks=tmp_path / "y.jsonl", **kw))) == 3  # one path alone
    assert len((tmp_path / "x.csv").read_text().splitlines()) > 3 and len(_jsonl(tmp_path / "y.jsonl")) == 3
    assert not Path("runs").exists()  # the Python API writes only what it is given
    with pytest.raises(ConfigError, match=r"^stip_rt.track_frames\(\) sinks\[1\] = 3: not an output path or a sink"):
        next(stip_rt.track_frames(str(vtest), sinks=["a.csv", 3], **kw))
    with pytest.raises(ConfigError, match=r"^stip_rt.track_frames\(\) bogus=1: unknown key"):
        next(stip_rt.track_frames(str(vtest), bogus=1))
    sources = [p.read_text() for p in (REPO / "stip_rt").rglob("*.py")]
    assert not any("stip_rt.track()" in s for s in sources)


def test_tracks_to_dataframe_without_pandas_says_what_to_install(
    tmp_path: Path, vtest: Path, pets_gt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stip_rt.io.read import tracks_to_dataframe

    out = tmp_path / "t.jsonl"
    assert main(["track", str(vtest), "--pose", "none", "--detections", str(pets_gt), "-N", "2", "-o", str(out)]) == 0
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(ImportError) as e:
        tracks_to_dataframe(out)
    assert str(e.value) == (
        "tracks_to_dataframe needs pandas, which is not installed: pip install 'stip-rt[analysis]' "
        "(or: pip install pandas)"
    )
    assert e.value.__cause__ is None and e.value.__suppress_context__
