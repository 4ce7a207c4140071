import json
import subprocess
import sys

from stip_rt.cli import main


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["packages"]["torch"]
    assert set(info["backends"]) >= {"torch", "onnxruntime", "tensorrt", "cuda-fast"}
    assert info["backends"]["torch"][0] is True


def test_help_lists_every_verb():
    out = subprocess.run([sys.executable, "-m", "stip_rt.cli", "--help"], capture_output=True, text=True, check=True)
    for verb in ["info", "track", "eval", "export", "bench", "weights", "train", "predict", "batch", "eval-track"]:
        assert verb in out.stdout


def test_info_says_what_a_bug_report_needs(tmp_path, monkeypatch, capsys):
    """The machine, where stip-rt runs from, the cache folder and the STIP_RT_* variables in effect."""
    import os

    import stip_rt

    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STIP_RT_CACHE_MAX_GB", "2")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(None, 1)[0]: line for line in out.splitlines() if line.strip()}
    assert sys.executable in lines["python"] and lines["platform"].split(None, 1)[1]
    assert f"{os.cpu_count()} logical cores" in lines["cpu"]
    assert os.path.dirname(stip_rt.__file__) in lines["stip-rt"]
    assert f"cache           {tmp_path / 'home' / 'cache'} (weights/, onnx/, engines/)" in out
    assert f"  STIP_RT_HOME={tmp_path / 'home'}\n" in out and "  STIP_RT_CACHE_MAX_GB=2\n" in out
    assert "torch built for CUDA" in out or "CPU-only torch build" in out
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cache"]["weights"] == str(tmp_path / "home" / "cache" / "weights")
    assert info["environment"]["STIP_RT_CACHE_MAX_GB"] == "2"


def _option_actions(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from ((f"{name} {v}", a) for v, a in _option_actions(child))
        elif action.option_strings:
            yield "", action


def test_every_option_of_the_small_commands_says_its_default():
    """An option with a default value (not a flag, not None) shows it in --help."""
    from stip_rt.cli import build_parser

    top = build_parser()
    verbs = next(a for a in top._actions if a.dest == "verb").choices
    missing = []
    for verb in ("info", "export", "bench", "cache", "weights", "predict", "config"):
        for where, action in _option_actions(verbs[verb]):
            if action.default in (None, False, [], "==SUPPRESS==") or action.help is None:
                continue
            if "default" not in action.help and action.default != 0:
                missing.append(f"{verb} {where}{action.option_strings[-1]}")
    assert not missing, missing
