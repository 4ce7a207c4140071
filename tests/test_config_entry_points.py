"""The CLI, ``track_frames`` and the viewer build the same run configuration for the same options."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stip_rt.config import to_dict
from stip_rt.run_config import RunConfig


@pytest.fixture()
def tracker_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "tracker.yaml"
    path.write_text("min_hits: 3\nsmoothing:\n  beta: 0.02\n")
    return path


def _cli(argv: list[str]) -> RunConfig:
    from stip_rt.cli import build_parser
    from stip_rt.cli.run_options import RUN_DESTS, TRACK_DESTS, config_from_args

    args = build_parser().parse_args(argv)
    return config_from_args(args, (*RUN_DESTS, *TRACK_DESTS), source=args.source)


def test_cli_track_frames_and_viewer_give_identical_configs(tracker_yaml: Path, capsys) -> None:
    from apps.viewer.options import ViewerOptions, run_config
    from stip_rt import track_config
    from stip_rt.cli import main

    source = "clip.mp4"
    cli = _cli([
        "track", source, "-m", "hrnet-w32-coco-256x192", "-w", "random", "-d", "rtmdet-s", "-b", "torch",
        "--device", "cpu", "--precision", "fp32", "-t", str(tracker_yaml), "-n", "3", "--no-smooth",
        "--start", "5", "--max-frames", "10",
    ])  # fmt: skip
    api = track_config(
        source, model="hrnet-w32-coco-256x192", weights="random", detector="rtmdet-s", backend="torch",
        device="cpu", precision="fp32", tracker=str(tracker_yaml), det_every=3, smooth=False, start=5, max_frames=10,
    )  # fmt: skip
    viewer = run_config(
        source,
        ViewerOptions(
            model="hrnet-w32-coco-256x192", weights="random", detector="rtmdet-s", backend="torch", device="cpu",
            precision="fp32", tracker=str(tracker_yaml), det_every=3, smoothing=False,
        ),
        start=5,
        max_frames=10,
    )  # fmt: skip
    assert cli == api == viewer
    # the options reached their keys (the comparison alone would pass if all three ignored them)
    assert (cli.pose.model, cli.pose.weights, cli.detect.model, cli.detect.interval.every) == (
        "hrnet-w32-coco-256x192", "random", "rtmdet-s", 3
    )  # fmt: skip
    assert (cli.runtime.backend, cli.runtime.device, cli.runtime.precision) == ("torch", "cpu", "fp32")
    assert cli.track.min_hits == 3 and cli.track.smoothing.beta == 0.02 and not cli.track.smoothing.enabled
    assert (cli.source.uri, cli.source.start, cli.source.max_frames) == (source, 5, 10)
    # --print-config prints that same tree
    assert main(["track", source, "-m", "hrnet-w32-coco-256x192", "-w", "random", "-d", "rtmdet-s", "-b", "torch",
                 "--device", "cpu", "--precision", "fp32", "-t", str(tracker_yaml), "-n", "3", "--no-smooth",
                 "--start", "5", "--max-frames", "10", "--print-config"]) == 0  # fmt: skip
    assert yaml.safe_load(capsys.readouterr().out) == to_dict(api)


def test_same_defaults_everywhere() -> None:
    from apps.viewer.options import ViewerOptions, run_config
    from stip_rt import track_config

    defaults = RunConfig()
    assert _cli(["track", "v.mp4"]) == track_config("v.mp4") == run_config("v.mp4", ViewerOptions())
    assert track_config("v.mp4") == RunConfig(source=type(defaults.source)(uri="v.mp4"))
    # predict/eval take the same model flags and defaults (flip test, backend, precision)
    from stip_rt.cli import build_parser
    from stip_rt.cli.run_options import MODEL_DESTS, config_from_args

    for argv in (
        ["predict", "imgs", "--detections", "d.json", "--out", "r.json"],
        ["eval", "--gt", "g.json", "--results", "r.json"],
    ):
        assert config_from_args(build_parser().parse_args(argv), MODEL_DESTS) == defaults
    argv = ["predict", "i", "--detections", "d", "--out", "o", "--no-flip-test", "-b", "torch"]
    args = build_parser().parse_args(argv)
    c = config_from_args(args, MODEL_DESTS)
    assert c.pose.flip_test is False and c.runtime.backend == "torch"
    old = build_parser().parse_args(["eval", "--gt", "g", "--no-flip", "--flip-test"])  # last one wins
    assert config_from_args(old, MODEL_DESTS).pose.flip_test is True


def test_track_config_takes_paths_sinks_and_branch_dicts(tmp_path: Path) -> None:
    from stip_rt import track_config
    from stip_rt.io.sinks import open_sink

    sink = open_sink(tmp_path / "obj.jsonl")
    c = track_config("v.mp4", sinks=["a.csv", tmp_path / "b.jsonl", sink], out="c.json", tracker={"min_hits": 1})
    assert c.outputs.files == ("c.json", "a.csv", str(tmp_path / "b.jsonl"))
    assert c == track_config("v.mp4", out=["c.json", "a.csv", str(tmp_path / "b.jsonl")], track={"min_hits": 1})


def test_track_frames_writes_sink_paths(tmp_path: Path, data_dir: Path) -> None:
    import pandas as pd

    import stip_rt

    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    out = tmp_path / "t.csv"
    results = list(
        stip_rt.track_frames(
            data_dir / "opencv_samples" / "vtest.avi", pose="none", detections=str(gt), max_frames=3, sinks=[out]
        )
    )
    assert [r.index for r in results] == [0, 1, 2]
    assert set(pd.read_csv(out)["frame"]) <= {0, 1, 2} and len(pd.read_csv(out)) == sum(len(r.tracks) for r in results)
