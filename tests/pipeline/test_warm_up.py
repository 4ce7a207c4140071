"""A live run makes its networks' slow first calls before the source is read (else its first frames,
late, are dropped); a file run does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from stip_rt.detect.rtmdet import RTMDetDetector
from stip_rt.pose.estimator import PoseEstimator
from stip_rt.run_load import load_run_config


@pytest.mark.parametrize("live", [True, False])
def test_a_live_run_warms_its_networks_up_while_it_is_built(vtest: Path, monkeypatch, live: bool) -> None:
    from stip_rt.pipeline_build import build_parts

    warmed: list[tuple[str, int, int]] = []
    for cls in (RTMDetDetector, PoseEstimator):
        real = cls.warm_up

        def spy(self, width: int, height: int, real=real, name=cls.__name__) -> None:
            warmed.append((name, width, height))
            real(self, width, height)

        monkeypatch.setattr(cls, "warm_up", spy)
    config = load_run_config(
        source=str(vtest),
        live=live,
        model="stip-w32-coco-256x192",
        weights="random",
        detector="rtmdet-tiny",
        detector_weights="random",
        device="cpu",
    )
    parts = build_parts(config)
    try:
        assert warmed == ([("RTMDetDetector", 768, 576), ("PoseEstimator", 768, 576)] if live else [])
    finally:
        parts.source.close()
