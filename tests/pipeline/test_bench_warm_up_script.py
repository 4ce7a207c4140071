"""scripts/bench_warm_up.py: the warm-up's start-up cost against the first call it spares, one run each way."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from load_script import load_script

from stip_rt.pose.estimator import PoseEstimator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_specs import TINY_HRNET


def test_it_warms_one_estimator_up_and_times_the_other_cold(tmp_path: Path, monkeypatch, capsys) -> None:
    tiny = tmp_path / "tiny-hrnet.yaml"
    tiny.write_text(yaml.safe_dump(TINY_HRNET))
    warmed = []
    real = PoseEstimator.warm_up
    monkeypatch.setattr(PoseEstimator, "warm_up", lambda self, w, h: (warmed.append((w, h)), real(self, w, h)))
    assert load_script("bench_warm_up").main(["--device", "cpu", "--model", str(tiny), "--size", "320x240"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert warmed == [(320, 240)]  # the second estimator only: the first pays its first call cold
    assert any(line.startswith("RATIO warm-up / first call = ") for line in out)
    assert out[-1].startswith("warm_up: seconds=") and out[-1].endswith("backend=torch device=cpu")


@pytest.mark.parametrize(("args", "message"), [(["--people", "0"], "--people 0"), (["--size", "big"], "--size 'big'")])
def test_bad_arguments_are_refused(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit):
        load_script("bench_warm_up").main(["--device", "cpu", *args])
    assert message in capsys.readouterr().err
