"""The run configuration: defaults.yaml equals RunConfig(), layering, aliases, and validation that
fails on the key, the value and its origin before anything is opened or built."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

from stip_rt.config import to_dict
from stip_rt.errors import ConfigError, WeightsError
from stip_rt.run_config import RunConfig
from stip_rt.run_load import LEAVES, OPTIONS, config_yaml, defaults_text, load_run_config

REPO = Path(__file__).resolve().parents[1]


def test_defaults_yaml_lists_exactly_the_keys_and_defaults_of_run_config() -> None:
    text = defaults_text()
    assert yaml.safe_load(text) == to_dict(RunConfig())
    # every key is on its own line with a "(type) meaning" comment
    documented = set()
    stack: list[str] = []
    for line in text.splitlines():
        m = re.match(r"^( *)(\w+):(.*)$", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack[depth:] = [m.group(2)]
        key = ".".join(stack)
        if key in LEAVES:
            assert re.search(r"#\s*\(.+\)\s*\S", m.group(3)), f"defaults.yaml: '{key}' has no '(type) meaning' comment"
            documented.add(key)
    assert documented == set(LEAVES)


def test_defaults_yaml_is_packaged() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["stip_rt"]
    assert any(fnmatch("defaults.yaml", pattern.replace("**/", "")) for pattern in data)
    assert (REPO / "stip_rt" / "defaults.yaml").is_file()


def test_every_option_names_a_key() -> None:
    assert set(OPTIONS.values()) <= set(LEAVES)


def test_layers_file_then_options_then_set(tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("track:\n  min_hits: 3\n  high_score: 0.7\ndetect:\n  interval:\n    every: 2\nqueues:\n  size: 4\n")
    c = load_run_config(f, ["track.high_score=0.6", "queues.size=5"], det_every=6, tracker={"min_hits": 5})
    assert (c.track.min_hits, c.track.high_score, c.detect.interval.every, c.queues.size) == (5, 0.6, 6, 5)
    # untouched keys keep the defaults in code, also inside a changed branch
    assert c.detect.interval.expansion == RunConfig().detect.interval.expansion
    assert c.track.low_score == RunConfig().track.low_score


def test_old_spellings_and_branch_dicts_give_the_same_tree(tmp_path: Path) -> None:
    tracker_yaml = tmp_path / "tracker.yaml"
    tracker_yaml.write_text("min_hits: 1\n")
    a = load_run_config(overrides=["detector.score_threshold=0.5", "tracker.min_hits=1", "queue_size=3"])
    b = load_run_config(detector={"score_threshold": 0.5}, tracker={"min_hits": 1}, queue_size=3)
    c = load_run_config(detect={"rtmdet": {"score_threshold": 0.5}}, track={"min_hits": 1}, queues={"size": 3})
    d = load_run_config(None, ["detect.rtmdet.score_threshold=0.5", "queues.size=3"], tracker=str(tracker_yaml))
    assert a == b == c == d
    assert a.detect.rtmdet.score_threshold == 0.5 and a.track.min_hits == 1 and a.queues.size == 3


def test_set_keeps_strings_as_written() -> None:
    c = load_run_config(overrides=["source.uri=0", "pose.weights=random"])
    assert c.source.uri == "0" and c.pose.weights == "random"


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["tracker.high_scor=0.4"], r"--set tracker.high_scor=0.4: unknown key 'tracker.high_scor' "
                                    r"\(did you mean 'track.high_score'\?\)"),
        (["det_evry=2"], r"did you mean 'det_every'"),
        (["queues.join_timeout_s=-1"], r"'queues.join_timeout_s' = -1.0: expected a value > 0"),
        (["join_timeout_s=0"], r"--set join_timeout_s=0: 'queues.join_timeout_s' = 0.0"),
        (["queue_size=99999999999999999999"], r"'queues.size' = 99999999999999999999: out of range"),
        (["queues.size=100000"], r"'queues.size' = 100000: expected a value <= 1024"),
        (["queues.size=-1"], r"'queues.size' = -1: expected a value >= 0"),
        (["queues.size=two"], r"'queues.size': expected an integer, got 'two'"),
        (["runtime.backend=tensorrtt"], r"'runtime.backend' = tensorrtt.*did you mean 'tensorrt'"),
        (["runtime.device=gpu"], r"'runtime.device' = gpu: use auto, cpu, cuda or cuda:N"),
        (["runtime.precision=fp8"], r"'runtime.precision' = fp8: not one of auto, fp32, fp16, bf16"),
        (["detect.model=rtmdet-x"], r"'detect.model' = rtmdet-x"),
        (["pose.model=stip-w32-coco"], r"'pose.model' = stip-w32-coco.*did you mean 'stip-w32-coco-"),
        (["pose.weights=missing.pth"], r"'pose.weights' = missing.pth: file not found"),
        (["detect.rtmdet.input_size=100"], r"--set detect.rtmdet.input_size=100: 'detect.rtmdet'.*multiple of 32"),
        (["detect.interval.every=0"], r"'detect.interval': 'every' must be >= 1"),
        (["track.low_score=0.9"], r"'track': need 0 <= low_score <= high_score"),
        (["source.max_frames=0"], r"'source.max_frames' = 0: expected a value >= 1"),
        (["track.max_age_s=.inf"], r"'track.max_age_s' = inf: expected a finite number"),
        (["track=5"], r"'track' is a section"),
        (["runtime.backend=cuda-fast", "runtime.device=cpu"], r"'runtime.backend' = cuda-fast: needs an NVIDIA GPU"),
        (["source.camera_width=640"], r"give source.camera_width and source.camera_height together"),
        (["source.reconnect_backoff_max_s=0.1"], r"'source.reconnect_backoff_max_s' = 0.1: below"),
        (["runtime.cuda_fast.buckets=[4, 2]"], r"'runtime.cuda_fast.buckets' = \(4, 2\): expected ascending"),
        (["novalue"], r"--set novalue: expected KEY=VALUE"),
        (["outputs.files=[a.jsonl, ./a.jsonl]"], r"'outputs.files' = .*'./a.jsonl' is named twice"),
        (["outputs.files=[a.mp4]", "outputs.video=a.mp4"], r"'outputs.video' = a.mp4: 'a.mp4' is named twice"),
        (["pose.model=none", "outputs.files=[a.jsonl, a.coco.json]"],
         r"a.coco.json: COCO keypoint results need keypoints, but pose.model is none"),
        (["pose.model=none", "outputs.files=[poses/]"], r"poses/: OpenPose .* need keypoints"),
        (["outputs.files=[a.xyz]"], r"a.xyz: cannot tell the output format"),
    ],
)
def test_bad_key_or_value_names_key_value_and_origin(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_run_config(overrides=overrides)


def test_bad_key_in_a_file_names_the_file_and_the_dotted_key(tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("detect:\n  rtmdet:\n    score_treshold: 0.5\n")
    with pytest.raises(ConfigError, match=rf"config {re.escape(str(f))}: unknown key 'detect.rtmdet.score_treshold' "
                                          r"\(did you mean 'detect.rtmdet.score_threshold'\?\)"):
        load_run_config(f)
    f.write_text("queues:\n  size: 9999\n")
    with pytest.raises(ConfigError, match=rf"config {re.escape(str(f))}: 'queues.size' = 9999"):
        load_run_config(f)


def test_options_are_named_in_messages() -> None:
    with pytest.raises(ConfigError, match=r"stip_rt.track_frames\(\) max_frames=-3: 'source.max_frames' = -3"):
        load_run_config(origin="stip_rt.track_frames()", max_frames=-3)
    with pytest.raises(ConfigError, match=r"--det-every 0: 'detect.interval'"):
        load_run_config(flags={"det_every": "--det-every"}, det_every=0)


def test_bad_setting_fails_before_anything_is_opened(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import stip_rt.pipeline_build as build
    from stip_rt.cli import main

    def must_not_run(*a: object, **k: object) -> None:
        raise AssertionError("a source or model was built for an invalid configuration")

    monkeypatch.setattr(build, "build_parts", must_not_run)
    monkeypatch.setattr(build, "build_estimator", must_not_run)
    for argv, named in (
        (["track", "missing.mp4", "--set", "tracker.high_scor=0.4"], "--set tracker.high_scor=0.4"),
        (["track", "missing.mp4", "--set", "queue_size=0x", "-o", "out.jsonl"], "'queues.size'"),
        (["batch", "missing/", "-O", "out", "--set", "join_timeout_s=-1"], "'queues.join_timeout_s' = -1.0"),
        (["predict", "missing/", "--detections", "d.json", "--out", "r.json", "--precision", "fp8"],
         "--precision fp8: 'runtime.precision' = fp8"),
        (["eval", "--gt", "g.json", "--images", "i", "--detections", "d.json", "-m", "hrnet-w32-coco-256x192",
          "--device", "gpu"], "--device gpu: 'runtime.device' = gpu"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0], err
    assert not Path("out").exists() and not Path("out.jsonl").exists()


def test_bad_setting_imports_no_torch_and_opens_no_source() -> None:
    code = (
        "import sys\n"
        "from stip_rt.cli import main\n"
        "rc = main(['track', 'missing.mp4', '--set', 'tracker.high_scor=0.4'])\n"
        "print(rc, sorted(m for m in ('torch', 'av', 'onnxruntime') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["2", "[]"]
    assert "did you mean 'track.high_score'" in out.stderr and "missing.mp4" not in out.stderr


def test_config_verb_and_print_config_print_the_same_tree(capsys, tmp_path: Path) -> None:
    from stip_rt.cli import main

    opts = ["--set", "detector.score_threshold=0.5", "-n", "3", "--no-flip-test", "--max-frames", "7"]
    assert main(["config", "video.mp4", *opts]) == 0
    printed = capsys.readouterr().out
    assert main(["track", "video.mp4", *opts, "--print-config"]) == 0
    assert capsys.readouterr().out == printed
    tree = yaml.safe_load(printed)
    assert tree["detect"]["rtmdet"]["score_threshold"] == 0.5 and tree["detect"]["interval"]["every"] == 3
    assert tree["source"] == {**to_dict(RunConfig())["source"], "uri": "video.mp4", "max_frames": 7}
    assert main(["config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == to_dict(RunConfig())
    assert main(["config", "--defaults"]) == 0
    assert capsys.readouterr().out == defaults_text()
    assert config_yaml(RunConfig()) == yaml.safe_dump(to_dict(RunConfig()), sort_keys=False)


def test_name_lists_have_one_home() -> None:
    from stip_rt.detect.config import DETECTORS
    from stip_rt.nn.rtmdet import SIZES
    from stip_rt.runtime import config, factory

    assert tuple(SIZES) == DETECTORS
    assert factory.BACKENDS is config.BACKENDS and factory.DEVICES is config.DEVICES
    assert factory.PRECISIONS is config.PRECISIONS


def test_one_weights_argument_check(tmp_path: Path) -> None:
    from stip_rt.pose.estimator import PoseEstimator
    from stip_rt.weights import checkpoint_arg

    ckpt = tmp_path / "w.pth"
    ckpt.write_bytes(b"")
    assert checkpoint_arg(None) == (False, None)
    assert checkpoint_arg("random") == (True, None)
    assert checkpoint_arg(ckpt) == (False, str(ckpt))
    with pytest.raises(WeightsError, match=r"weights nope\.pth: file not found"):
        checkpoint_arg("nope.pth")
    with pytest.raises(WeightsError, match=r"weights nope\.pth: file not found"):
        PoseEstimator.from_name("hrnet-w32-coco-256x192", "nope.pth")


def test_a_suggestion_is_a_key_under_the_branch_given() -> None:
    """``track.nope`` once suggested 'tracker' (the old name of the branch itself)."""
    with pytest.raises(ConfigError) as err:
        load_run_config(overrides=["track.nope=1"])
    assert "unknown key 'track.nope'" in str(err.value) and "'tracker'" not in str(err.value)
    hint = re.search(r"did you mean '([^']+)'", str(err.value))
    assert hint is None or hint[1].startswith("track.")


def test_a_key_given_twice_in_a_config_file_is_an_error(tmp_path: Path) -> None:
    """YAML would keep the last value silently; one of the two settings would be lost without a word."""
    f = tmp_path / "run.yaml"
    f.write_text("track:\n  min_hits: 3\n  high_score: 0.5\n  min_hits: 5\n")
    with pytest.raises(ConfigError, match=rf"^config {re.escape(str(f))}: line 4: the key 'min_hits' is given "
                                          r"twice \(first on line 2\)$"):  # fmt: skip
        load_run_config(f)
    f.write_text("track:\n  min_hits: 3\ndetect:\n  min_hits: 3\n")  # the same name in two branches is fine
    with pytest.raises(ConfigError, match=r"unknown key 'detect\.min_hits'"):
        load_run_config(f)


def test_files_are_checked_last_and_a_missing_source_with_them(tmp_path: Path) -> None:
    from stip_rt.errors import SourceError

    video, weights, dets = tmp_path / "nope.mp4", tmp_path / "w.pth", tmp_path / "d.txt"
    with pytest.raises(SourceError) as e:
        load_run_config(source=str(video), weights=str(weights), detections=str(dets), check_source=True)
    msg = str(e.value)
    assert msg.index(f"{video}: file not found") < msg.index("'detect.detections'") < msg.index("'pose.weights'")
    with pytest.raises(ConfigError) as e2:  # the source is the run's to open (a Pipeline's parts may bring
        load_run_config(source=str(video), weights=str(weights))  # their own): not checked by default
    assert f"'pose.weights' = {weights}: file not found" in str(e2.value) and str(video) not in str(e2.value)
    alone = r"^--set pose\.in_vis_thre=2: 'pose\.in_vis_thre' = 2\.0: expected a value <= 1 and >= 0$"
    with pytest.raises(ConfigError, match=alone):  # a bad value is named first, alone: before any file
        load_run_config(source=str(video), weights=str(weights), check_source=True, overrides=["pose.in_vis_thre=2"])
