"""``stip-rt analyze``: the CSV's columns, the PNGs, and one clear error line (exit 2) for bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from analysis_synth import coco_walk, write_tracks

from stip_rt.cli import main
from stip_rt.io.tracks_format import csv_columns
from stip_rt.schemas import COCO17


def test_analyze_writes_csv_and_plots(tmp_path: Path, capsys) -> None:
    tracks = coco_walk(tmp_path / "t.jsonl", n=30)
    out = tmp_path / "out"
    assert main(["analyze", str(tracks), "--scale", "0.01", "--out", str(out)]) == 0
    with (out / "movement.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    cols = set(rows[0])
    expected = {"track_id", "frame", "time", "observed", "x_px", "y_px", "x_m", "y_m", "speed_px_s", "speed_m_s",
                "speed_m_s_smooth", "accel_m_s2", "accel_m_s2_smooth", "left_knee_deg", "left_knee_deg_smooth",
                "trunk_lean_deg", "nose_x_px", "nose_score", "right_ankle_y_px_smooth"}  # fmt: skip
    assert expected <= cols
    assert len(rows) == 30 + 20
    assert float(rows[5]["speed_m_s"]) == pytest.approx(1.5, abs=0.01)
    assert float(rows[5]["left_knee_deg"]) == pytest.approx(90, abs=0.01)
    for name in ("trajectories", "ground", "speed", "timeline", "angles/track_1", "angles/track_2"):
        png = out / f"{name}.png"
        assert png.stat().st_size > 5000, png
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert str(out / "movement.csv") in printed and "angles" in printed


def test_csv_only_and_homography(tmp_path: Path) -> None:
    tracks = coco_walk(tmp_path / "t.jsonl", n=10)
    h = tmp_path / "ground.yaml"
    h.write_text(
        "image_points: [[0, 480], [640, 480], [640, 0], [0, 0]]\n"
        "ground_points: [[0, 0], [6.4, 0], [6.4, 4.8], [0, 4.8]]\n"
    )
    out = tmp_path / "out"
    assert main(["analyze", str(tracks), "--homography", str(h), "--no-plots", "--smooth", "none", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["movement.csv", "summary.csv"]
    header = (out / "movement.csv").read_text().splitlines()[0].split(",")
    assert "speed_m_s" in header and not any(c.endswith("_smooth") for c in header)


def _csv_tracks(folder: Path) -> Path:
    """The header row of the CSV that ``stip-rt track --out tracks.csv`` writes."""
    path = folder / "tracks.csv"
    path.write_text(",".join(csv_columns(COCO17.keypoints)) + "\n")
    return path


@pytest.mark.parametrize(
    ("make", "extra", "needle"),
    [
        (lambda d: d / "missing.jsonl", [], "missing.jsonl: file not found"),
        (
            lambda d: (d / "x.json").write_text(json.dumps({"a": 1})) and d / "x.json",
            [],
            "x.json: line 1: not a stip-rt.tracks",
        ),
        (_csv_tracks, [], "tracks.csv: CSV tracks files are not read"),
        (lambda d: coco_walk(d / "t.jsonl", n=3), ["--scale", "-0.5"], "--scale -0.5: must be a positive number"),
        (lambda d: coco_walk(d / "t.jsonl", n=3), ["--homography", "nohere.yaml"], "nohere.yaml: file not found"),
        (lambda d: write_tracks(d / "nofps.jsonl", [[]], fps=None), [], "nofps.jsonl: no frame rate"),
        (lambda d: coco_walk(d / "t.jsonl", n=3), ["--kpt-threshold", "5"], "--kpt-threshold 5: must be within"),
        # the header has a frame rate: the value given is what is wrong
        (lambda d: coco_walk(d / "t.jsonl", n=3), ["--fps", "0"], "--fps 0: must be a positive frame rate"),
        (lambda d: coco_walk(d / "t.jsonl", n=3), ["--fps", "-2.5"], "--fps -2.5: must be a positive frame rate"),
        (lambda d: coco_walk(d / "t.jsonl", n=3), ["--cutoff", "0"], "--cutoff 0: must be a positive frequency"),
        (lambda d: coco_walk(d / "t.jsonl", n=3), ["--kpt-cutoff", "-1"], "--kpt-cutoff -1: must be a positive"),
        (lambda d: coco_walk(d / "t.jsonl", n=3), ["--max-gap", "-1"], "--max-gap -1: must be a number of frames"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, make, extra, needle) -> None:
    tracks = make(tmp_path)
    assert main(["analyze", str(tracks), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stip-rt analyze: error:") and needle in err and "\n" not in err


def test_degenerate_homography(tmp_path: Path, capsys) -> None:
    tracks = coco_walk(tmp_path / "t.jsonl", n=3)
    h = tmp_path / "bad.json"
    h.write_text(json.dumps({"image_points": [[0, 0], [10, 10], [20, 20], [30, 30]],
                             "ground_points": [[0, 0], [1, 0], [1, 1], [0, 1]]}))  # fmt: skip
    assert main(["analyze", str(tracks), "--homography", str(h), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(h) in err and "degenerate" in err


def test_scale_and_homography_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["analyze", "t.jsonl", "--scale", "1", "--homography", "h.yaml", "--out", str(tmp_path)])
    assert e.value.code == 2


def test_missing_pandas_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)
    tracks = coco_walk(tmp_path / "t.jsonl", n=3)
    assert main(["analyze", str(tracks), "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'stip-rt[analysis]'" in capsys.readouterr().err


def test_csv_reads_back_with_float_columns(tmp_path: Path) -> None:
    """A still person (speed 0) on whole-pixel keypoints: pandas reads every quantity back as float,
    the ids and frames as int and ``observed`` as bool."""
    import pandas as pd

    from stip_rt.analysis import movement

    tracks = coco_walk(tmp_path / "t.jsonl", n=30)
    assert main(["analyze", str(tracks), "--scale", "0.01", "--no-plots", "--out", str(tmp_path / "o")]) == 0
    back = pd.read_csv(tmp_path / "o" / "movement.csv")
    assert {c: str(t) for c, t in back.dtypes.items() if c in ("track_id", "frame", "observed")} == {
        "track_id": "int64", "frame": "int64", "observed": "bool"}  # fmt: skip
    others = back.drop(columns=["track_id", "frame", "observed"])
    assert not [c for c, t in others.dtypes.items() if t != np.float64]
    assert back.loc[back["track_id"] == 2, "speed_px_s"].to_numpy() == pytest.approx(0.0)
    df = movement(tracks, scale=0.01)
    assert list(back.columns) == list(df.columns)
    assert np.allclose(back[others.columns].to_numpy(), df[others.columns].to_numpy(np.float64), rtol=1e-7,
                       equal_nan=True)  # fmt: skip
