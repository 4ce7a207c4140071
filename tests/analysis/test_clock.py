"""The time axis of movement(): the file's frame times (variable frame rate, a camera slower than its
nominal rate, no rate in the header), ``frame / fps`` when a rate is given, and the smoother's rate in Hz."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from analysis_synth import header, person, pose

from stip_rt.analysis import movement
from stip_rt.schemas import COCO17


def _write(path: Path, records: list[tuple[int, float, list[dict]]], fps: float | None, schema=None) -> Path:
    """A JSONL tracks file from (frame, time in s, people) records; times rounded as the sinks do (0.1 ms)."""
    lines = [json.dumps(header(fps=fps, schema=schema))]
    lines += [json.dumps({"frame": f, "time": round(t, 4), "people": p}) for f, t, p in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def _vfr_times(n: int) -> np.ndarray:
    """A phone video's variable frame rate: steps of 1/30 s and 1/15 s in turn (20 fps on average)."""
    return np.r_[0.0, np.cumsum(np.where(np.arange(n - 1) % 2 == 0, 1 / 30, 1 / 15))]


def _stall_times(n: int) -> np.ndarray:
    """A camera at 30 fps that stalls for 0.2 s every 9 frames (consecutive frame numbers, a jump in time)."""
    steps = np.full(n - 1, 1 / 30)
    steps[::9] = 0.2
    return np.r_[0.0, np.cumsum(steps)]


def test_variable_frame_rate_speeds_use_the_frame_times(tmp_path: Path, caplog) -> None:
    # walking 100 px/s in real time; the header says 30 fps, the frames come at 20 fps on average
    times = _vfr_times(80)
    records = [(f, t, [person(1, (100 + 100 * t, 400), pose(COCO17, 100 + 100 * t))]) for f, t in enumerate(times)]
    with caplog.at_level(logging.WARNING):
        df = movement(_write(tmp_path / "vfr.jsonl", records, 30.0, COCO17))
    assert df["time"].to_numpy() == pytest.approx(times, abs=1e-4)
    assert df["speed_px_s"].to_numpy() == pytest.approx(100.0, rel=2e-3)  # frame / 30 gave 75 and 150
    assert df["speed_px_s_smooth"].to_numpy() == pytest.approx(100.0, rel=2e-3)
    assert df["accel_px_s2_smooth"].to_numpy() == pytest.approx(0.0, abs=1.0)
    assert df["left_knee_x_px_smooth"].to_numpy() == pytest.approx(90 + 100 * times, abs=0.05)
    assert df.attrs["fps"] == pytest.approx(20.0, rel=0.01)
    assert "the header says 30 fps but the frame times give 20" in caplog.text


def test_camera_slower_than_its_nominal_rate(tmp_path: Path) -> None:
    # a webcam reports 30 fps but delivers 15: consecutive frame numbers, real times 1/15 s apart.
    # x sways at 1 Hz around a walk of 100 px/s; a 2 Hz cutoff must keep the 1 Hz sway (gain ~1),
    # which it halves when the filter believes the samples come at 30 fps (1 Hz then looks like 2 Hz).
    n, real = 150, 15.0
    t = np.arange(n) / real
    x = 100 + 100 * t + 20 * np.sin(2 * np.pi * 1.0 * t)
    df = movement(_write(tmp_path / "cam.jsonl", [(f, t[f], [person(1, (x[f], 400))]) for f in range(n)], 30.0),
                  cutoff_hz=2.0)  # fmt: skip
    assert df.attrs["fps"] == pytest.approx(real, rel=1e-3)
    inner = slice(20, -20)
    assert df["x_px_smooth"].to_numpy()[inner] == pytest.approx(x[inner], abs=0.5)
    speed = 100 + 2 * np.pi * 20 * np.cos(2 * np.pi * t)  # dx/dt > 0 throughout
    assert np.median(df["speed_px_s"].to_numpy() / speed) == pytest.approx(1.0, abs=0.02)  # not 2


def test_no_rate_in_the_header_takes_the_frame_times(tmp_path: Path) -> None:
    records = [(f, f / 20, [person(1, (100 + 3 * f, 400))]) for f in range(30)]
    df = movement(_write(tmp_path / "nofps.jsonl", records, None))
    assert df.attrs["fps"] == pytest.approx(20.0)
    assert df["speed_px_s"].to_numpy() == pytest.approx(60.0, rel=1e-6)


def test_dropped_frames_of_a_live_stream(tmp_path: Path) -> None:
    # frames 10-13 were dropped (the numbers skip, the times follow the clock): filled, speeds unchanged
    kept = [f for f in range(40) if not 10 <= f < 14]
    df = movement(_write(tmp_path / "drop.jsonl", [(f, f / 25, [person(1, (100 + 4 * f, 400))]) for f in kept], 25.0))
    assert df["frame"].tolist() == list(range(40)) and (~df["observed"]).sum() == 4
    assert df["time"].to_numpy() == pytest.approx(np.arange(40) / 25)
    assert df["speed_px_s"].dropna().to_numpy() == pytest.approx(100.0)
    assert df["speed_px_s_smooth"].to_numpy() == pytest.approx(100.0, abs=1e-6)


def test_a_given_fps_is_the_clock_of_every_column(tmp_path: Path) -> None:
    # an image folder tracked at the default 30 fps, shot at 60: fps=60 makes times frame / 60, and the
    # speeds follow the same clock as the time column
    records = [(f, f / 30, [person(1, (100 + 2 * f, 400))]) for f in range(40)]
    df = movement(_write(tmp_path / "imgs.jsonl", records, 30.0), fps=60.0)
    assert df["time"].to_numpy() == pytest.approx(np.arange(40) / 60)
    assert df["speed_px_s"].to_numpy() == pytest.approx(120.0)
    assert df.attrs["fps"] == 60.0


def test_rounded_times_of_a_steady_rate_give_clean_accelerations(tmp_path: Path) -> None:
    # 30 fps times rounded to 0.1 ms (0.0333, 0.0667 ...) are the exact clock: no rounding noise
    records = [(f, f / 30, [person(1, (100 + 10 * f, 400))]) for f in range(60)]
    df = movement(_write(tmp_path / "r.jsonl", records, 30.0))
    assert df["time"].to_numpy() == pytest.approx(np.arange(60) / 30, abs=1e-12)
    assert df["accel_px_s2"].to_numpy() == pytest.approx(0.0, abs=1e-6)


def test_times_that_do_not_increase_fall_back_to_the_frame_rate(tmp_path: Path, caplog) -> None:
    times = np.arange(30) / 25 + np.where(np.arange(30) == 12, 0.2, 0.0)  # one frame stamped far ahead
    records = [(f, times[f], [person(1, (100 + 4 * f, 400))]) for f in range(30)]
    with caplog.at_level(logging.WARNING):
        df = movement(_write(tmp_path / "bad.jsonl", records, 25.0))
    assert np.isfinite(df["speed_px_s"]).all()
    assert df["speed_px_s"].to_numpy() == pytest.approx(100.0)
    assert "do not increase" in caplog.text


@pytest.mark.parametrize("clock", ["25fps", "variable-rate", "stalls"])
def test_angular_velocity_in_degrees_per_second_of_frame_time(tmp_path: Path, clock: str) -> None:
    # the left ankle swings around the knee at 60 °/s (knee angle 60° → about 164°); the smoother works
    # in time, so uneven frame steps (before: 61-66 °/s at alternating steps, 56-76 °/s with stalls)
    # read the true rate as well as a steady 25 fps
    knee_i, ankle_i = COCO17.keypoints.index("left_knee"), COCO17.keypoints.index("left_ankle")
    times = {"25fps": np.arange(44) / 25, "variable-rate": _vfr_times(36), "stalls": _stall_times(30)}[clock]
    records = []
    for f, t in enumerate(times):
        kp = pose(COCO17, 200.0)
        theta = np.radians(60 + 60 * t)
        kp[ankle_i, :2] = kp[knee_i, :2] + 50 * np.array([np.sin(theta), -np.cos(theta)])
        records.append((f, t, [person(1, (200, 400), kp)]))
    df = movement(_write(tmp_path / "swing.jsonl", records, 25.0 if clock == "25fps" else 30.0, COCO17))
    assert df["left_knee_deg"].to_numpy() == pytest.approx(60 + 60 * times, abs=0.05)
    assert df["left_knee_deg_s"].to_numpy() == pytest.approx(60.0, abs=0.5)
    assert df["right_knee_deg_s"].to_numpy() == pytest.approx(0.0, abs=1e-6)  # the straight leg does not move
    assert df["trunk_lean_deg_s_smooth"].to_numpy() == pytest.approx(0.0, abs=1e-6)
    assert df["left_knee_deg_smooth"].to_numpy() == pytest.approx(60 + 60 * times, abs=0.05)
    assert df["left_knee_deg_s_smooth"].to_numpy() == pytest.approx(60.0, abs=0.5)


@pytest.mark.parametrize("clock", ["steady", "variable-rate", "stalls"])
def test_a_sway_is_smoothed_in_time_at_any_frame_rate(tmp_path: Path, clock: str) -> None:
    # x sways at 1 Hz (20 px) around a walk of 100 px/s; a 2 Hz cutoff keeps the sway. At a steady 15 fps
    # the smoothed x is within 0.06 px inside the track; filtered over frames, alternating 1/30-1/15 s
    # steps were 1 px off and stalls 8 px: in time, both are within 0.2 px, and so are their speeds
    times = {"steady": np.arange(150) / 15, "variable-rate": _vfr_times(200), "stalls": _stall_times(250)}[clock]
    x = 100 + 100 * times + 20 * np.sin(2 * np.pi * times)
    records = [(f, t, [person(1, (x[f], 400))]) for f, t in enumerate(times)]
    df = movement(_write(tmp_path / "sway.jsonl", records, 30.0), cutoff_hz=2.0)
    inner = slice(20, -20)
    assert df["x_px_smooth"].to_numpy()[inner] == pytest.approx(x[inner], abs=0.2)
    assert df["y_px_smooth"].to_numpy() == pytest.approx(400.0, abs=1e-6)
    speed = np.abs(100 + 2 * np.pi * 20 * np.cos(2 * np.pi * times))
    assert df["speed_px_s_smooth"].to_numpy()[inner] == pytest.approx(speed[inner], abs=8.0)  # before: 30, 117 off


@pytest.mark.parametrize("gap", [4, 11])
def test_dropped_frames_at_a_variable_frame_rate(tmp_path: Path, gap: int) -> None:
    # --max-gap counts frames at a variable rate too: 4 dropped frames (10 ≥ 4) are filled, with times
    # interpolated between their neighbours', 11 are not; observed keeps its meaning
    times = _vfr_times(60)
    kept = [f for f in range(60) if not 20 <= f < 20 + gap]
    records = [(f, times[f], [person(1, (100 + 100 * times[f], 400))]) for f in kept]
    df = movement(_write(tmp_path / "drop.jsonl", records, 30.0))
    filled = gap <= 10
    frames = list(range(60)) if filled else kept
    assert df["frame"].tolist() == frames and (~df["observed"]).sum() == (gap if filled else 0)
    t = df["time"].to_numpy()
    assert t == pytest.approx(np.interp(frames, kept, times[kept]), abs=1e-4)
    assert df["x_px_smooth"].to_numpy() == pytest.approx(100 + 100 * t, abs=0.01)
    assert df["speed_px_s_smooth"].dropna().to_numpy() == pytest.approx(100.0, rel=2e-3)


def test_predicted_rows_are_gaps_not_measurements(tmp_path: Path) -> None:
    # box-only, detect every 5: between detections the tracker wrote its constant-velocity guess
    # ("predicted": true). The walker really moves at 100 px/s; the guesses say 300 px/s. Speeds come
    # from the measured rows only, the predicted frames are filled gaps (observed False).
    records = []
    for f in range(40):
        p = person(1, (100 + 4 * f, 400))
        if f % 5:
            p = person(1, (100 + 4 * (f - f % 5) + 12 * (f % 5), 400)) | {"predicted": True}
        records.append((f, f / 25, [p]))
    df = movement(_write(tmp_path / "coast.jsonl", records, 25.0))
    assert df["frame"].tolist() == list(range(36))  # the last detection is frame 35
    assert df["observed"].tolist() == [f % 5 == 0 for f in range(36)]
    assert df["speed_px_s_smooth"].to_numpy() == pytest.approx(100.0, abs=1e-6)
    assert df["speed_px_s"].dropna().to_numpy() == pytest.approx(100.0)
