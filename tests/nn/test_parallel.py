"""nn/parallel.py: HRNet's branches as ParallelBranches (plain loop off CUDA; fork/join on CUDA streams)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

import stip_rt.nn.parallel as parallel
from stip_rt.models import build_model
from stip_rt.nn.fold import prepare_inference
from stip_rt.nn.fuse import ConvAddReLU, fuse_conv_relu
from stip_rt.nn.hrnet import HighResolutionModule
from stip_rt.nn.parallel import ParallelBranches, ParallelRows, set_parallel_branches

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_specs import TINY_HRNET


def _official_fuse(mod: HighResolutionModule, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The official fuse loop (HRNet's pose_hrnet.py) over the module's cells."""
    out = []
    for i, row in enumerate(mod.fuse_layers):
        y = xs[0] if i == 0 else row[0](xs[0])
        for j in range(1, mod.num_branches):
            y = y + (xs[j] if i == j else row[j](xs[j]))
        out.append(torch.relu(y))
    return out


def test_hrnet_branches_and_fuse_rows_keep_their_checkpoint_keys_and_run_as_before() -> None:
    torch.manual_seed(0)
    mod = HighResolutionModule([8, 16, 32], num_blocks=2).eval()
    assert isinstance(mod.branches, ParallelBranches) and isinstance(mod.fuse_layers, ParallelRows)
    keys = mod.state_dict().keys()
    assert "branches.2.1.conv2.weight" in keys and "fuse_layers.0.2.1.running_mean" in keys
    assert "fuse_layers.2.0.1.0.weight" in keys and mod.fuse_layers[1][1] is None  # a chain; the identity slot
    xs = [torch.randn(2, c, 32 // 2**i, 24 // 2**i) for i, c in enumerate((8, 16, 32))]
    with torch.no_grad():
        want = _official_fuse(mod, [branch(x) for branch, x in zip(mod.branches, xs, strict=True)])
        set_parallel_branches(mod, True)  # CPU tensors: the plain loops
        got = mod(xs)
    assert len(got) == 3 and all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert set_parallel_branches(build_model("hrnet-w32-coco-256x192"), True) == 16  # (1 + 4 + 3) × 2


def test_fusion_keeps_the_branches_one_module_and_fuses_inside_each() -> None:
    torch.manual_seed(0)
    net = prepare_inference(build_model(TINY_HRNET))  # BatchNorm folded
    fused, relu, add = fuse_conv_relu(net)
    calls = [str(n.target) for n in fused.graph.nodes if n.op == "call_module"]
    lists = {f"stage{k}.0.{part}" for k in (2, 3, 4) for part in ("branches", "fuse_layers")}
    assert lists <= set(calls)
    assert not any(".branches." in c or ".fuse_layers." in c for c in calls)  # nothing inside is called from outside
    inside = [m for name, m in fused.named_modules() if ".branches." in name and isinstance(m, ConvAddReLU)]
    assert len(inside) == 2 + 3 + 4  # one BasicBlock per branch: its conv2→add→ReLU
    row = [m for name, m in fused.named_modules() if "stage2.0.fuse_layers.1" in name and isinstance(m, ConvAddReLU)]
    assert len(row) == 1  # relu(conv(x0) + x1) of stage 2's second output, fused inside its row
    assert add == len(inside) + len(row) + 1 and relu > 0  # + layer1's Bottleneck
    assert not any(isinstance(m, ConvAddReLU) for m in net.modules())  # the traced network is left alone
    assert fused.get_submodule("stage3.0.branches") is not net.stage3[0].branches
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(fused(x), net(x))


class _Recorder(nn.Module):
    """A branch that notes the stream current when it runs."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x: object) -> str:
        self.log.append(f"{self.name} on {parallel_current[0]}")
        return self.name


parallel_current = ["main"]


def test_on_cuda_side_streams_fork_from_and_join_the_current_stream(monkeypatch) -> None:
    log: list[str] = []

    class Stream:
        def __init__(self, name: str) -> None:
            self.name = name

        def wait_stream(self, other: Stream) -> None:
            log.append(f"{self.name} waits {other.name}")

    made = iter(Stream(f"side{i}") for i in range(10))
    monkeypatch.setattr(parallel, "_streams", threading.local())
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: next(made))
    main = Stream("main")
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device: main)

    @contextlib.contextmanager
    def on(stream: Stream) -> Iterator[None]:
        parallel_current[0] = stream.name
        yield
        parallel_current[0] = "main"

    monkeypatch.setattr(torch.cuda, "stream", on)
    branches = ParallelBranches([_Recorder(f"b{i}", log) for i in range(3)])
    branches.parallel = True
    cuda = SimpleNamespace(is_cuda=True, device=torch.device("cuda", 0))
    assert branches([cuda, cuda, cuda]) == ["b0", "b1", "b2"]
    assert log == [
        "side0 waits main",
        "side1 waits main",
        "b1 on side0",
        "b2 on side1",
        "b0 on main",
        "main waits side0",
        "main waits side1",
    ]
    log.clear()
    assert branches([cuda, cuda, cuda]) == ["b0", "b1", "b2"]
    assert log[2:5] == ["b1 on side0", "b2 on side1", "b0 on main"]  # the same two side streams again
    rows = ParallelRows([_Recorder(f"r{i}", log) for i in range(2)])
    rows.parallel = True
    log.clear()
    seen: list[object] = []
    monkeypatch.setattr(_Recorder, "forward", lambda self, x: seen.append(x) or self.name)
    xs = [cuda, cuda, cuda]
    assert rows(xs) == ["r0", "r1"] and all(x is xs for x in seen)  # every output reads all the inputs
