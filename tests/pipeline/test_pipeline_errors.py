"""Error policy: one StipError naming the input and frame; stages after the failure drain, so
nothing computed before it is lost; sinks are closed; no thread is left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from fake_stages import (
    FakeDetector,
    FakeSource,
    FakeTracker,
    JsonlSink,
    ListSink,
    make_parts,
    stip_threads,
)

import stip_rt
from stip_rt.errors import BackendError, CallbackError, SinkError, SourceError, StipError
from stip_rt.pipeline import Pipeline
from stip_rt.run_load import load_run_config
from stip_rt.types import FrameResult, RunInfo


def run(parts, sinks=()):  # type: ignore[no-untyped-def]
    p = Pipeline(load_run_config(source=parts.source.info.uri), sinks, parts=parts)
    got = []
    with pytest.raises(StipError) as ei:
        for r in p:
            got.append(r.index)
    assert stip_threads() == []
    return ei.value, got


def test_source_error_after_frames_keeps_them_all(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    err, got = run(make_parts(FakeSource(12, fail_at=7, uri="cut.mp4")), [JsonlSink(out)])
    assert isinstance(err, SourceError) and "cut.mp4" in str(err) and "frame 7" in str(err)
    assert got == list(range(7))
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(7))


def test_detector_crash_names_input_and_frame() -> None:
    sink = ListSink()
    parts = make_parts(FakeSource(20, uri="walk.avi"), detector=FakeDetector(fail_at=5))
    err, got = run(parts, [sink])
    assert isinstance(err, BackendError)
    msg = str(err)
    assert "walk.avi" in msg and "frame 5" in msg and "detect" in msg and "CUDA out of memory" in msg
    assert got == list(range(5)) and sink.closed == 1
    assert parts.source.closed >= 1  # type: ignore[attr-defined]


def test_tracker_error_stops_upstream_and_keeps_earlier_frames() -> None:
    sink = ListSink()
    err, got = run(make_parts(FakeSource(50), tracker=FakeTracker(fail_at=9)), [sink])
    assert "frame 9" in str(err) and "track" in str(err) and "NaN" in str(err)
    assert got == list(range(9)) == [r.index for r in sink.results]


def test_sink_error_is_a_sink_error_and_other_sinks_are_closed() -> None:
    bad, good = ListSink(fail_at=4), ListSink()
    err, got = run(make_parts(FakeSource(30, uri="cam0")), [good, bad])
    assert isinstance(err, SinkError) and "frame 4" in str(err) and "cam0" in str(err)
    assert bad.closed == 1 and good.closed == 1
    assert got == list(range(4))


def test_a_user_sink_that_fails_to_write_is_named_with_the_cause_chained() -> None:
    class Broken(ListSink):
        def write(self, result: FrameResult) -> None:
            if result.index == 2:
                raise ValueError("bad row")
            super().write(result)

    good, bad = ListSink(), Broken()
    err, got = run(make_parts(FakeSource(9, uri="cam0")), [good, bad])
    assert isinstance(err, CallbackError) and not isinstance(err, OSError)  # the caller's code, not a disk
    assert str(err) == "cam0: frame 2: sink stage failed: Broken: cannot write: ValueError: bad row"
    assert isinstance(err.__cause__, ValueError) and got == [0, 1] and bad.closed == good.closed == 1
    assert [r.index for r in good.results] == [0, 1, 2]  # nothing written is lost: frame 2 reached the first sink


def test_a_user_sink_whose_open_or_close_has_a_bug_is_a_callback_error_an_oserror_a_sink_error() -> None:
    class BadOpen(ListSink):
        def open(self, run: RunInfo) -> None:
            raise KeyError("fps")

    class BadClose(ListSink):
        def close(self) -> None:
            super().close()
            raise TypeError("not a str")

    first = ListSink()
    with pytest.raises(CallbackError, match=r"^BadOpen: cannot open: KeyError: 'fps'$") as ei:
        Pipeline(load_run_config(source="x"), [first, BadOpen()], parts=make_parts(FakeSource(5))).start()
    assert isinstance(ei.value.__cause__, KeyError) and first.closed == 1
    bad, good = BadClose(), ListSink()
    err, got = run(make_parts(FakeSource(3)), [bad, good])
    assert isinstance(err, CallbackError) and str(err) == "BadClose: cannot close: TypeError: not a str"
    assert got == [0, 1, 2] and bad.closed == good.closed == 1 and len(good.results) == 3
    assert stip_threads() == []


def _callback_run(on_result=None, on_end=None, n: int = 10):  # type: ignore[no-untyped-def]
    sink = ListSink()
    p = Pipeline(load_run_config(source="cam0"), [sink], parts=make_parts(FakeSource(n, uri="cam0")),
                 on_result=on_result, on_end=on_end)  # fmt: skip
    return p, sink


def _raise_at(frame: int, exc: BaseException):  # type: ignore[no-untyped-def]
    def on_result(result: FrameResult) -> None:
        if result.index == frame:
            raise exc

    return on_result


def test_an_on_result_error_is_a_callback_error_not_a_disk_error_and_keeps_its_cause() -> None:
    boom = ValueError("boom")
    p, sink = _callback_run(on_result=_raise_at(4, boom))
    with pytest.raises(CallbackError) as ei:
        p.run()
    err = ei.value
    assert str(err) == "cam0: frame 4: on_result failed: ValueError: boom" and not isinstance(err, OSError)
    assert err.__cause__ is boom and boom.__traceback__ is not None  # the user's own traceback is kept
    assert sink.closed == 1 and [r.index for r in sink.results] == [0, 1, 2, 3, 4]  # frame 4 was written first
    assert stip_threads() == []


def test_an_on_end_error_is_the_runs_error() -> None:
    def on_end(error: StipError | None) -> None:
        raise RuntimeError("cannot notify")

    p, sink = _callback_run(on_result=lambda r: None, on_end=on_end)
    with pytest.raises(CallbackError, match=r"^cam0: on_end failed: RuntimeError: cannot notify$") as ei:
        p.run()
    assert isinstance(ei.value.__cause__, RuntimeError) and len(sink.results) == 10
    assert stip_threads() == []


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()], ids=["sys.exit", "KeyboardInterrupt"])
def test_system_exit_or_ctrl_c_in_on_result_stops_the_run_and_reaches_the_caller(exc: BaseException) -> None:
    ended: list[StipError | None] = []
    p, sink = _callback_run(on_result=_raise_at(3, exc), on_end=ended.append, n=40)
    with pytest.raises(type(exc)) as ei:
        p.run()
    assert ei.value is exc
    assert isinstance(p.error, CallbackError) and f"frame 3: on_result failed: {type(exc).__name__}" in str(p.error)
    assert len(ended) == 1 and isinstance(ended[0], CallbackError)  # on_end learns why the run ended
    assert sink.closed == 1 and [r.index for r in sink.results][:4] == [0, 1, 2, 3] and len(sink.results) < 40
    assert stip_threads() == []


def test_system_exit_in_on_end_while_iterating_reaches_the_caller() -> None:
    def on_end(error: StipError | None) -> None:
        raise SystemExit(5)

    p, _ = _callback_run(on_end=on_end, n=3)
    with pytest.raises(SystemExit):
        list(p)
    assert stip_threads() == []


def test_first_error_wins_with_detect_every_n() -> None:
    # tracker fails while the pose stage waits for its feedback: no deadlock, one error
    parts = make_parts(FakeSource(30), tracker=FakeTracker(fail_at=2))
    p = Pipeline(load_run_config(source="fake.mp4", det_every=4), parts=parts)
    with pytest.raises(StipError, match="frame 2"):
        list(p)
    assert stip_threads() == []


def test_sink_that_cannot_open_leaves_nothing_open() -> None:
    class Unwritable(ListSink):
        def open(self, run: RunInfo) -> None:
            raise SinkError("/ro/out.jsonl: cannot write (permission denied)")

    parts = make_parts(FakeSource(5))
    first = ListSink()
    with pytest.raises(SinkError, match=r"/ro/out\.jsonl"):
        Pipeline(load_run_config(source="x"), [first, Unwritable()], parts=parts).start()
    assert first.closed == 1 and parts.source.closed == 1  # type: ignore[attr-defined]
    assert stip_threads() == []


def test_a_user_sink_that_cannot_open_is_one_sink_error_naming_it() -> None:
    class Locked(ListSink):
        path = "/ro/user.out"

        def open(self, run: RunInfo) -> None:
            raise PermissionError(13, "Permission denied")

    parts = make_parts(FakeSource(5))
    first = ListSink()
    with pytest.raises(SinkError, match=r"^/ro/user\.out: cannot open: PermissionError: \[Errno 13\] Permission") as ei:
        Pipeline(load_run_config(source="x"), [first, Locked()], parts=parts).start()
    assert isinstance(ei.value.__cause__, PermissionError)
    assert first.closed == 1 and parts.source.closed == 1  # type: ignore[attr-defined]
    assert stip_threads() == []


def test_on_end_receives_the_error() -> None:
    errors: list[object] = []
    p = Pipeline(
        load_run_config(source="x"),
        parts=make_parts(FakeSource(9, fail_at=3)),
        on_result=lambda r: None,
        on_end=errors.append,
    )
    with pytest.raises(SourceError):
        p.run()
    assert len(errors) == 1 and isinstance(errors[0], SourceError)


# ---------------------------------------------------------------------------- bad input, end to end


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    from stip_rt.cli import main

    code = main(argv)
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("stip-rt track: error")]
    return code, err


def _box_only(source: str, gt: Path, out: Path, *extra: str) -> list[str]:
    return ["track", source, "--model", "none", "--detections", str(gt), "-o", str(out), *extra]


@pytest.fixture(scope="module")
def gt(data_dir: Path) -> Path:
    return data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"


def _assert_one_error(code: int, err: list[str], name: str) -> None:
    assert code == 2
    assert len(err) == 1 and name in err[0], err


def _jsonl_valid(path: Path) -> list[dict]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(x) for x in lines]  # every line parses: nothing half-written


@pytest.mark.parametrize("case", ["missing", "zero-byte", "text-as-mp4"])
def test_unreadable_video_files(case: str, tmp_path: Path, gt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "in.mp4"
    if case == "zero-byte":
        video.write_bytes(b"")
    elif case == "text-as-mp4":
        video.write_text("this is not a video\n" * 50)
    out = tmp_path / "out.jsonl"
    code, err = _cli(_box_only(str(video), gt, out), capsys)
    _assert_one_error(code, err, str(video))
    assert stip_threads() == []


def test_truncated_video_keeps_frames_before_the_damage(
    tmp_path: Path, data_dir: Path, gt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = (data_dir / "opencv_samples" / "vtest.avi").read_bytes()
    video = tmp_path / "cut.avi"
    video.write_bytes(src[: len(src) // 20])  # about the first 40 of 795 frames
    out = tmp_path / "out.jsonl"
    code, err = _cli(_box_only(str(video), gt, out), capsys)
    lines = _jsonl_valid(out)
    frames = [x["frame"] for x in lines[1:]]
    assert frames == list(range(len(frames))) and len(frames) > 10
    _assert_one_error(code, err, str(video))
    assert "truncated" in err[0]


def test_unreadable_camera(tmp_path: Path, gt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _cli(_box_only("99", gt, tmp_path / "o.jsonl"), capsys)
    _assert_one_error(code, err, "camera 99")


def test_camera_disappearing_mid_run(
    tmp_path: Path, gt: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools

    import cv2
    import numpy as np

    import stip_rt.io.sources as sources
    from stip_rt.io.source_config import SourceConfig

    class VanishingCamera:
        opened = 0

        def __init__(self, device: object) -> None:
            VanishingCamera.opened += 1
            self.ok = VanishingCamera.opened == 1  # unplugged after the first session
            self.reads = 0

        def isOpened(self) -> bool:
            return self.ok

        def read(self) -> tuple[bool, object]:
            self.reads += 1
            if not self.ok or self.reads > 8:
                return False, None
            return True, np.full((48, 64, 3), self.reads, np.uint8)

        def set(self, *a: object) -> bool:
            return True

        def get(self, prop: int) -> float:
            return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

        def release(self) -> None:
            self.ok = False

    monkeypatch.setattr(cv2, "VideoCapture", VanishingCamera)
    monkeypatch.setattr(
        sources, "SourceConfig", functools.partial(SourceConfig, reconnect_retries=2, reconnect_backoff_s=0.01)
    )
    out = tmp_path / "cam.jsonl"
    code, err = _cli(_box_only("0", gt, out), capsys)
    _assert_one_error(code, err, "camera 0")
    lines = _jsonl_valid(out)
    assert len(lines) >= 2  # header + the frames captured before the camera vanished
    assert stip_threads() == []


def test_stream_that_refuses_connections(tmp_path: Path, gt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"rtsp://127.0.0.1:{port}/live"
    code, err = _cli(_box_only(url, gt, tmp_path / "o.jsonl"), capsys)
    _assert_one_error(code, err, url)


def test_output_folder_not_writable(
    tmp_path: Path, data_dir: Path, gt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "sub" / "out.jsonl"  # a folder inside a file: cannot exist, even for root
    code, err = _cli(_box_only(str(data_dir / "opencv_samples" / "vtest.avi"), gt, out), capsys)
    _assert_one_error(code, err, str(blocker))
    assert stip_threads() == []


@pytest.mark.parametrize("content", ["1,2,3\nnot,a,number,row\n", '{"not": "a list"}'])
def test_malformed_detections_file(
    tmp_path: Path, data_dir: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dets = tmp_path / ("dets.txt" if content.startswith("1") else "dets.json")
    dets.write_text(content)
    out = tmp_path / "o.jsonl"
    code, err = _cli(_box_only(str(data_dir / "opencv_samples" / "vtest.avi"), dets, out, "--max-frames", "3"), capsys)
    _assert_one_error(code, err, str(dets))


# ---------------------------------------------------------------------------- broken numbers, sinks that fail to close

TINY_NET = {"widths": [8, 16, 24, 32], "num_modules": [1, 1, 1], "num_blocks": 1, "stem_blocks": 1}
TINY_POSE = {"name": "tiny-hrnet", "arch": "hrnet", "schema": "coco17", "input_size": [64, 64], "net": TINY_NET}


@pytest.fixture
def nan_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny pose model YAML and a real checkpoint of it whose final layer is NaN (a diverged training)."""
    import torch
    import yaml

    from stip_rt.models import build_model

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_POSE))
    state = build_model(TINY_POSE).state_dict()
    state["final_layer.weight"].fill_(float("nan"))
    weights = tmp_path / "nan.pth"
    torch.save(state, weights)
    return spec, weights


def _people_from_frame(gt: Path, first: int, out: Path) -> Path:
    """The MOT ground truth without the boxes of frames before ``first`` (0-based): nobody there."""
    rows = [r for r in gt.read_text().splitlines() if int(r.split(",")[0]) - 1 >= first]
    out.write_text("\n".join(rows) + "\n")
    return out


def test_nan_weights_fail_naming_the_checkpoint_and_frame_and_keep_earlier_frames(
    tmp_path: Path, data_dir: Path, gt: Path, nan_checkpoint: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    spec, weights = nan_checkpoint
    dets = _people_from_frame(gt, 5, tmp_path / "dets.txt")  # frames 0-4 need no pose network
    jsonl, json_out = tmp_path / "out.jsonl", tmp_path / "out.json"
    argv = ["track", str(data_dir / "opencv_samples" / "vtest.avi"), "--detections", str(dets), "--model", str(spec),
            "--weights", str(weights), "--backend", "torch", "--max-frames", "12", "--set", "pose.batch_frames=1",
            "-o", str(jsonl), "-o", str(json_out)]  # fmt: skip
    code, err = _cli(argv, capsys)
    _assert_one_error(code, err, str(weights))
    assert "frame 5" in err[0] and "pose model tiny-hrnet" in err[0] and "not finite (NaN or inf)" in err[0], err
    lines = _jsonl_valid(jsonl)
    assert [x["frame"] for x in lines[1:]] == [0, 1, 2, 3, 4]  # every frame before the fault, nothing made up
    assert [f["frame"] for f in json.loads(json_out.read_text())["frames"]] == [0, 1, 2, 3, 4]
    assert stip_threads() == []


def test_an_empty_box_in_a_detections_file_gets_no_pose_and_the_run_goes_on(tmp_path: Path, data_dir: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_POSE))
    dets = tmp_path / "det.txt"  # frame 2 (1-based) holds a legal MOT row with w = h = 0 between two people
    dets.write_text("1,-1,50,60,40,90,1,-1,-1,-1\n2,-1,52,60,40,90,1,-1,-1,-1\n2,-1,100,100,0,0,1,-1,-1,-1\n"
                    "2,-1,300,80,40,90,0.8,-1,-1,-1\n3,-1,54,60,40,90,1,-1,-1,-1\n")  # fmt: skip
    results = list(stip_rt.track_frames(str(data_dir / "opencv_samples" / "vtest.avi"), pose=str(spec),
                                        weights="random", detections=str(dets), max_frames=3,
                                        tracker={"min_hits": 1}))  # fmt: skip
    assert [r.index for r in results] == [0, 1, 2]
    tracks = results[1].tracks
    assert len(tracks) == 2 and tracks.keypoints is not None and np.isfinite(tracks.keypoints).all()
    np.testing.assert_allclose(tracks.boxes[:, 0], [52, 300], atol=1)
    np.testing.assert_allclose(tracks.box_scores, [1, 0.8])  # det_index points at the pose rows: the right people
    assert sorted(tracks.det_index.tolist()) == [0, 1]
    assert stip_threads() == []


def test_sink_failing_to_close_after_a_stage_error_is_reported_after_it(
    tmp_path: Path,
    data_dir: Path,
    gt: Path,
    nan_checkpoint: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stip_rt.io.json_sink import JsonSink

    real_close = JsonSink.close

    def close_into_a_folder(self: JsonSink) -> None:  # the output path became a folder meanwhile
        self.path.mkdir(exist_ok=True)
        (self.path / "keep").write_text("x")
        real_close(self)

    monkeypatch.setattr(JsonSink, "close", close_into_a_folder)
    spec, weights = nan_checkpoint
    dets = _people_from_frame(gt, 3, tmp_path / "dets.txt")
    jsonl, json_out = tmp_path / "out.jsonl", tmp_path / "lost.json"
    argv = ["track", str(data_dir / "opencv_samples" / "vtest.avi"), "--detections", str(dets), "--model", str(spec),
            "--weights", str(weights), "--backend", "torch", "--max-frames", "8", "--set", "pose.batch_frames=1",
            "-o", str(json_out), "-o", str(jsonl)]  # fmt: skip
    code, err = _cli(argv, capsys)
    assert code == 2 and len(err) == 1, err  # the first error decides the exit code; one line
    first, _, later = err[0].partition("; also: ")
    assert str(weights) in first and "frame 3" in first and "not finite" in first
    assert str(json_out) in later and "cannot write" in later  # the JSON that was never written is named
    assert [x["frame"] for x in _jsonl_valid(jsonl)[1:]] == [0, 1, 2]  # the other sink was still closed


def test_every_sink_failing_to_close_is_reported_in_order() -> None:
    class FailsToClose(ListSink):
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

        def close(self) -> None:
            super().close()
            raise OSError(28, "No space left on device")

    a, b, good = FailsToClose("/out/a.json"), FailsToClose("/out/b.mp4"), ListSink()
    err, got = run(make_parts(FakeSource(20, uri="walk.avi"), detector=FakeDetector(fail_at=5)), [a, good, b])
    msg = str(err)
    assert isinstance(err, BackendError) and got == list(range(5))
    assert msg.index("frame 5") < msg.index("/out/a.json") < msg.index("/out/b.mp4"), msg
    assert "No space left on device" in msg and a.closed == b.closed == good.closed == 1


def test_sink_failing_to_close_without_another_error_is_the_error() -> None:
    class FailsToClose(ListSink):
        path = "/out/a.json"

        def close(self) -> None:
            super().close()
            raise OSError(28, "No space left on device")

    err, got = run(make_parts(FakeSource(4)), [FailsToClose()])
    assert isinstance(err, SinkError) and got == [0, 1, 2, 3]
    assert str(err) == "/out/a.json: cannot close: OSError: [Errno 28] No space left on device"


def test_corrupt_cached_stip_is_reported_not_hidden_behind_hrnet(
    tmp_path: Path, data_dir: Path, gt: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stip_rt.pipeline_build import AUTO_POSE
    from stip_rt.weights import get_entry, sha256_file, weights_dir
    from stip_rt.weights.cache import write_stamp

    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STIP_RT_WEIGHTS_URL", "http://127.0.0.1:9/")  # offline: HRNet could not be fetched
    stip = weights_dir() / get_entry(AUTO_POSE[0]).file
    stip.parent.mkdir(parents=True)
    stip.write_bytes(b"PK\x03\x04" + bytes(1000))
    write_stamp(stip, sha256_file(stip))  # imported (stamped) once ...
    stip.write_bytes(b"PK\x03\x04" + bytes(500))  # ... damaged since: cut short
    argv = ["track", str(data_dir / "opencv_samples" / "vtest.avi"), "--detections", str(gt), "-o",
            str(tmp_path / "o.jsonl"), "--max-frames", "2"]  # fmt: skip
    code, err = _cli(argv, capsys)
    _assert_one_error(code, err, str(stip))
    assert "corrupt" in err[0] and AUTO_POSE[1] in err[0] and "download" not in err[0], err


def test_offline_run_names_every_missing_model_in_one_message(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stip_rt.pipeline_build import AUTO_POSE

    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))  # nothing cached
    monkeypatch.setenv("STIP_RT_WEIGHTS_URL", "http://127.0.0.1:9/")  # offline: nothing can be fetched
    video = str(data_dir / "opencv_samples" / "vtest.avi")
    code, err = _cli(["track", video, "-o", str(tmp_path / "o.jsonl"), "--max-frames", "2"], capsys)
    assert code == 2 and len(err) == 1, err
    line = err[0]
    assert "2 model files are missing" in line
    for name in ("rtmdet-tiny", AUTO_POSE[1]):  # the detector and the pose model, with how to import each
        assert f"'{name}'" in line and f"stip-rt weights import FILE --name {name}" in line, line
    assert not (tmp_path / "o.jsonl").exists()  # nothing was opened or written


def test_a_missing_source_and_a_missing_weights_file_are_reported_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video, weights = tmp_path / "nope.mp4", tmp_path / "nope.pth"
    code, err = _cli(["track", str(video), "--weights", str(weights), "-o", str(tmp_path / "o.jsonl")], capsys)
    assert code == 2 and len(err) == 1, err
    line = err[0]
    assert line.index(f"{video}: file not found") < line.index(f"also: --weights {weights}: 'pose.weights'"), line
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_a_missing_source_is_reported_before_the_model_files_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import stip_rt.pipeline_build as build

    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))  # nothing cached
    monkeypatch.setenv("STIP_RT_WEIGHTS_URL", "http://127.0.0.1:9/")  # offline
    located: list[object] = []
    monkeypatch.setattr(build, "fetch_weights", lambda config: located.append(config))  # would download
    for source in (tmp_path / "nope.mp4", f"{tmp_path}/*.png"):
        code, err = _cli(["track", str(source), "-o", str(tmp_path / "o.jsonl")], capsys)
        _assert_one_error(code, err, str(source))
    with pytest.raises(SourceError, match=r"nope\.mp4: file not found"):  # the library: build_parts, same order
        Pipeline(load_run_config(source=str(tmp_path / "nope.mp4"))).prepare()
    assert located == [] and not (tmp_path / "o.jsonl").exists()


def test_sink_failing_to_open_and_another_failing_to_close_are_both_reported() -> None:
    class Unwritable(ListSink):
        def open(self, run: RunInfo) -> None:
            raise SinkError("/ro/out.jsonl: cannot write (permission denied)")

    class FailsToClose(ListSink):
        path = "/out/a.json"

        def close(self) -> None:
            super().close()
            raise OSError(5, "Input/output error")

    parts = make_parts(FakeSource(5))
    first = FailsToClose()
    with pytest.raises(SinkError) as ei:
        Pipeline(load_run_config(source="x"), [first, Unwritable()], parts=parts).start()
    assert str(ei.value) == (
        "/ro/out.jsonl: cannot write (permission denied); also: /out/a.json: cannot close: OSError: "
        "[Errno 5] Input/output error"
    )
    assert first.closed == 1 and parts.source.closed == 1  # type: ignore[attr-defined]
