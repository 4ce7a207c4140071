"""Fixtures of the training tests: the shared COCO images and a tiny COCO-17 STIP model file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_spec


@pytest.fixture(scope="session")
def coco(data_dir: Path) -> tuple[Path, Path]:
    """(annotations, images) of the 3 shared COCO val2017 images (7 labelled people)."""
    root = data_dir / "coco_val2017_keypoints"
    return root / "annotations/person_keypoints_val2017_sample.json", root / "images"


@pytest.fixture
def tiny_coco_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-stip-coco.json"
    path.write_text(json.dumps(tiny_spec()))
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: tiny models gain nothing from more, and on a loaded CPU two threads ran ~20× slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
