"""A sample that fails in a DataLoader worker (an unreadable image) ends the run at once with one line naming
the image, and leaves no worker behind: ``stip-rt train`` used to hang at exit, waiting for a worker that ignores
SIGTERM (``stip_rt/train/loader.py``)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import torch
from train_helpers import make_config

import stip_rt.data.keypoints_dataset as dataset_mod
from stip_rt.data.keypoints_dataset import KeypointsDataset, load_instances
from stip_rt.errors import DataError, SourceError
from stip_rt.schemas import COCO17
from stip_rt.train.loader import close_batches, next_batch, train_loader
from stip_rt.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
BAD = "000000040083.jpg"  # the image made unreadable


@pytest.fixture
def coco_copy(coco, tmp_path) -> tuple[Path, Path]:
    ann, images = coco
    shutil.copytree(images, tmp_path / "images")
    return ann, tmp_path / "images"


def _break(image: Path) -> None:
    image.write_bytes(b"\xff\xd8\xff\xe0" + bytes(2000))  # a JPEG's first bytes, then nothing decodable


def test_a_worker_error_is_its_own_message_and_the_workers_end_with_the_run(coco_copy, tmp_path, tiny_coco_yaml):
    _break(coco_copy[1] / BAD)
    with pytest.raises(DataError) as e:  # the raised error (its traceback) stays alive here, as in the CLI
        train(make_config(tiny_coco_yaml, coco_copy, tmp_path / "run", workers=1))
    assert str(e.value) == f"image {coco_copy[1] / BAD}: missing or unreadable"  # not the worker's traceback text
    assert "Caught DataError in DataLoader worker process 0" in str(e.value.__cause__)
    assert multiprocessing.active_children() == []  # before: the worker, waiting for indices that never came


class _Failing(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        if index == 1:
            raise SourceError("image /data/x.jpg: cannot read it")
        if index == 3:
            raise ValueError("not a StipError")
        return index


def test_next_batch_raises_a_workers_error_as_it_was_raised():
    batches = iter(train_loader(_Failing(), [[0], [1], [2], [3]], 1, False, torch.Generator()))
    try:
        assert int(next_batch(batches)) == 0
        with pytest.raises(SourceError) as e:
            next_batch(batches)
        assert str(e.value) == "image /data/x.jpg: cannot read it"
        assert int(next_batch(batches)) == 2
        with pytest.raises(ValueError, match="Caught ValueError in DataLoader worker process 0"):
            next_batch(batches)  # not one of ours: as the DataLoader raised it
    finally:
        close_batches(batches)
    assert multiprocessing.active_children() == []
    close_batches(iter(train_loader(_Failing(), [[0]], 0, False, torch.Generator())))  # no workers: nothing to do


def test_any_failure_of_a_sample_names_its_image(coco, monkeypatch):
    ann, images = coco
    ds = KeypointsDataset(load_instances(ann, images, COCO17), COCO17, (32, 32), (8, 8), 2.0, train=False)

    def broken(*args, **kwargs):
        raise cv2.error("OpenCV(4.10.0) error: (-215:Assertion failed) in function 'warpAffine'")

    monkeypatch.setattr(dataset_mod.cv2, "warpAffine", broken)
    with pytest.raises(DataError, match=r"image .*\.jpg: cannot make its training sample \(error: OpenCV.*warpAffine"):
        ds[0]


class _Stuck(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        if index == 1:
            time.sleep(600)  # a sample that never ends (a hung network file system)
        return index


@pytest.mark.slow  # the DataLoader's own shutdown waits 2 × 5 s before the worker is killed
def test_a_stuck_worker_is_killed():
    batches = iter(train_loader(_Stuck(), [[0], [1]], 1, False, torch.Generator()))
    assert int(next_batch(batches)) == 0
    time.sleep(0.5)  # the worker is inside sample 1
    close_batches(batches)  # it ignores SIGTERM (the stop signals are the main process's)
    assert multiprocessing.active_children() == []


# a subprocess importing torch with one loader worker: ~3 s; in the fast subset (it never ended before)
def test_the_cli_fails_at_once_on_a_bad_image_and_keeps_the_last_checkpoint(coco_copy, tmp_path, tiny_coco_yaml):
    ann, images = coco_copy
    out = tmp_path / "run"
    train(make_config(tiny_coco_yaml, coco_copy, out))  # epoch 1: checkpoint.pth
    checkpoint = (out / "checkpoint.pth").read_bytes()
    _break(images / BAD)
    cmd = [sys.executable, "-m", "stip_rt.cli", "train", "--model", str(tiny_coco_yaml), "--train-ann", str(ann),
           "--train-images", str(images), "--out", str(out), "--epochs", "2", "--batch-size", "2", "--workers", "1",
           "--device", "cpu", "--set", "tensorboard=false"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)  # before: no end
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == f"stip-rt train: error: image {images / BAD}: missing or unreadable"
    assert "Traceback" not in proc.stderr
    assert (out / "checkpoint.pth").read_bytes() == checkpoint  # resume from epoch 1 once the image is fixed
