"""Item 2 of issue 17: DDP with two gloo processes = one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from train_helpers import make_config, tiny_spec

from stip_rt.data.sampler import StepBatchSampler
from stip_rt.errors import ConfigError
from stip_rt.train.distributed import init_distributed
from stip_rt.train.trainer import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, config_fields: dict, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from stip_rt.train.trainer import TrainConfig

    losses: list[float] = []
    train(TrainConfig(**config_fields), lambda e: losses.append(e.loss) if e.kind == "step" else None)
    Path(out, f"losses{rank}.json").write_text(json.dumps(losses))


def test_torchrun_environment_is_checked(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ConfigError, match="RANK is not set"):
        init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    info, device = init_distributed("cuda")
    assert (info.rank, info.world_size, info.is_main, device) == (0, 1, True, "cuda")


def test_ranks_get_the_micro_batches_of_one_process_with_accumulation():
    # step s covers perm[4s:4s+4]; rank r takes slice r; one process with accumulate=2 takes both in order
    one = list(StepBatchSampler(9, 2, accumulate=2, seed=5))
    ranks = [list(StepBatchSampler(9, 2, world_size=2, rank=r, seed=5)) for r in (0, 1)]
    assert one == [b for pair in zip(*ranks) for b in pair] and len(one) == 4
    with pytest.raises(ConfigError, match="less than one global batch"):
        StepBatchSampler(3, 2, world_size=2)


# two spawned processes importing torch: ~12 s on a loaded 2-core machine; in the fast subset (the DDP goal)
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(coco, tmp_path):
    model = tmp_path / "m.json"
    model.write_text(json.dumps(tiny_spec()))
    # global batch 4: one process × batch 2 × accumulate 2, or two processes × batch 2 (same micro-batches)
    one = make_config(model, coco, tmp_path / "one", accumulate=2, epochs=2)
    single: list[float] = []
    train(one, lambda e: single.append(e.loss) if e.kind == "step" else None)
    two = make_config(model, coco, tmp_path / "two", epochs=2)
    fields = {k: getattr(two, k) for k in two.__dataclass_fields__}
    mp.start_processes(_worker, args=(2, _free_port(), fields, str(tmp_path)), nprocs=2, start_method="spawn")
    rank0 = json.loads((tmp_path / "losses0.json").read_text())
    assert len(single) == len(rank0) == 2  # 7 people // 4 = 1 step per epoch
    assert rank0 == pytest.approx(single, rel=1e-5)
    assert json.loads((tmp_path / "losses1.json").read_text()) == []  # rank 0 alone reports
    assert (tmp_path / "two/checkpoint.pth").exists() and (tmp_path / "two/model.pth").exists()
    a = torch.load(tmp_path / "one/final_state.pth", weights_only=True)
    b = torch.load(tmp_path / "two/final_state.pth", weights_only=True)
    for k in a:
        if "running" not in k and "num_batches" not in k:  # BN statistics: rank 0's micro-batch only under DDP
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6, msg=k)
