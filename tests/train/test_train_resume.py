"""Item 4 of issue 17: exact resume (bit-equal losses on the CPU) and a checkpoint on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from train_helpers import make_config

from stip_rt.data.sampler import StepBatchSampler
from stip_rt.train.state import rng_state, set_rng_state
from stip_rt.train.trainer import train, train_loader

REPO = Path(__file__).resolve().parents[2]


def _losses(config, stop_at: int | None = None):
    stop = threading.Event()
    losses = []

    def on_event(e):
        if e.kind == "step":
            losses.append(e.loss)
            if e.step == stop_at:
                stop.set()

    return train(config, on_event, stop), losses


def test_interrupted_and_resumed_run_reproduces_the_losses_exactly(coco, tmp_path, tiny_coco_yaml):
    # 2 epochs × 3 steps; augmentation on (seeded), so the data order and the crops must both be restored
    kw = {"epochs": 2, "milestones": (1,)}
    _, full = _losses(make_config(tiny_coco_yaml, coco, tmp_path / "a", **kw))
    assert len(full) == 6
    stopped, first = _losses(make_config(tiny_coco_yaml, coco, tmp_path / "b", **kw), stop_at=2)  # mid-epoch 1
    assert stopped.stopped and stopped.final is None and first == full[:2]
    state = torch.load(stopped.checkpoint, weights_only=True)
    assert (state["epoch"], state["epoch_step"], state["step"]) == (0, 2, 2)
    assert {"python", "numpy", "torch", "cuda"} <= set(state["rng"][0]) and state["scaler"] is not None
    resumed, rest = _losses(make_config(tiny_coco_yaml, coco, tmp_path / "b", **kw))
    assert rest == full[2:]  # bit-equal floats, lr drop at epoch 1 included
    assert resumed.steps == 6 and not resumed.stopped
    assert (tmp_path / "a/log.csv").read_text() == (tmp_path / "b/log.csv").read_text()  # epoch means too
    a = torch.load(tmp_path / "a/final_state.pth", weights_only=True)
    b = torch.load(resumed.final, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = rng_state()
    x = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == x


def test_sampler_resumes_at_a_step_and_splits_global_batches():
    full = list(StepBatchSampler(11, 2, seed=3))
    s = StepBatchSampler(11, 2, seed=3)
    s.set_epoch(0, start_step=2)
    assert list(s) == full[2:] and len(s) == 3
    # 2 ranks × batch 2 see the micro-batches of one process with accumulate=2, step by step
    one = list(StepBatchSampler(11, 2, accumulate=2, seed=3))
    ranks = [list(StepBatchSampler(11, 2, world_size=2, rank=r, seed=3)) for r in (0, 1)]
    assert one[0::2] == ranks[0] and one[1::2] == ranks[1] and len(one) == 4
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}


def _long_training(coco, model, out, workers: int, **popen) -> subprocess.Popen[str]:
    """``stip-rt train`` of ``model`` for 1000 epochs in a subprocess (stopped by the test), logging every step."""
    ann, images = coco
    cmd = [sys.executable, "-m", "stip_rt.cli", "train", "--model", str(model), "--train-ann", str(ann),
           "--train-images", str(images), "--out", str(out), "--epochs", "1000", "--batch-size", "2",
           "--workers", str(workers), "--device", "cpu", "--log-every", "1", "--set", "tensorboard=false"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, **popen)


# a subprocess importing torch: ~9 s; in the fast subset (pre-emption must write a checkpoint)
def test_sigterm_writes_a_checkpoint_and_exits(coco, tmp_path, tiny_coco_yaml):
    out = tmp_path / "run"
    proc = _long_training(coco, tiny_coco_yaml, out, workers=0)
    try:
        for line in proc.stderr:  # wait for the first optimiser step
            if "step 1/3" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-2000:]
    state = torch.load(out / "checkpoint.pth", weights_only=True)
    assert state["step"] >= 1 and "stopped: wrote" in err
    assert (out / "train.log").read_text().count("step 1/3") == 1


class _SignalledDataset(torch.utils.data.Dataset):
    """Sample 0 sends SIGTERM to the worker process loading it, as a signal to the whole process group does."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        return torch.tensor(index)


def test_loader_workers_ignore_sigterm():
    # the main process alone decides (finish the step, write the checkpoint); workers killed by the signal made
    # the step fail with "DataLoader worker (pid ...) is killed by signal: Terminated"
    loader = train_loader(_SignalledDataset(), [[0], [1]], workers=1, pin_memory=False, generator=torch.Generator())
    assert [int(b) for b in loader] == [0, 1]


# a subprocess importing torch and 2 loader workers: ~3 s
def test_sigterm_to_the_process_group_writes_a_checkpoint(coco, tmp_path, tiny_coco_yaml):
    out = tmp_path / "run"
    # its own session: the signal goes to the trainer and its loader workers, as Slurm's scancel does
    proc = _long_training(coco, tiny_coco_yaml, out, workers=2, start_new_session=True)
    try:
        for line in proc.stderr:  # wait for the first optimiser step: the workers are running
            if "step 1/3" in line:
                break
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err[-2000:]
    assert "stopped: wrote" in err and "killed by signal" not in err
    assert torch.load(out / "checkpoint.pth", weights_only=True)["step"] >= 1


def test_a_crash_after_an_epochs_log_row_and_before_its_checkpoint_logs_that_epoch_once(coco, tmp_path,
                                                                                         tiny_coco_yaml):
    # the epoch event comes after the CSV row and before checkpoint.pth: a crash there (a kill) left the row,
    # and the resumed run, which redoes that epoch, appended it a second time
    kw = {"epochs": 2, "milestones": (1,)}
    train(make_config(tiny_coco_yaml, coco, tmp_path / "a", **kw))

    def crash_at_the_second_epochs_end(e):
        if e.kind == "epoch" and e.epoch == 1:
            raise KeyboardInterrupt

    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        train(make_config(tiny_coco_yaml, coco, out, **kw), crash_at_the_second_epochs_end)
    assert torch.load(out / "checkpoint.pth", weights_only=True)["epoch"] == 1  # epoch 2 is not in it
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()] == ["epoch", "1", "2"]
    train(make_config(tiny_coco_yaml, coco, out, **kw))
    assert (out / "log.csv").read_text() == (tmp_path / "a/log.csv").read_text()  # epochs 1 and 2, once each
