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
