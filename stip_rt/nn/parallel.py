"""Independent sub-networks run side by side on CUDA streams: HRNet's parallel branches.

An HRNet module runs its 2–4 branches (chains of BasicBlocks at different resolutions) one after
the other, although none reads another's output. At batch 1 each of their convolutions is a
small kernel that occupies a few of the GPU's multiprocessors, so the branches' kernels could run
at the same time. :class:`ParallelBranches` is the module list of those branches: called with one
input per branch, it returns one output per branch. With ``parallel`` set (the ``cuda-fast``
backend's ``parallel_branches``) and CUDA inputs, branch 0 (the longest, at the highest
resolution) runs on the current stream and every other branch on a side stream of its own:

* the side streams first wait for the current stream (their inputs were made there), and the
  current stream waits for all of them before the call returns, so what comes after sees every
  output, and memory handed between the streams is never reused while the other still reads it
  (work on a side stream happens only between that fork and that join);
* inside a CUDA graph capture this fork and join is how work on several streams is captured into
  one graph; its replay then runs the branches' kernels concurrently;
* the result is the same, bit for bit: the same kernels on the same inputs, only their order on
  the GPU changes.

Off by default: whether and how much it helps is to be measured on a GPU (``stip-rt bench
--backends cuda-fast,cuda-fast+branches``). Without ``parallel``, off CUDA, or while
``torch.fx`` traces it, it is a plain loop; ``torch.fx`` keeps it as one module
(:func:`stip_rt.nn.fuse.fuse_conv_relu` fuses inside each branch, ``FUSE_CHILDREN_ONLY``).
"""

from __future__ import annotations

import threading

import torch
from torch import nn

_streams = threading.local()  # each thread's side streams per device


def side_streams(device: torch.device, count: int) -> list[torch.cuda.Stream]:
    """``count`` side streams of ``device`` for the calling thread, made once and shared by every module.

    The modules of one network run one after the other, so they can share them; another thread
    (another stage, possibly capturing a CUDA graph) gets streams of its own.
    """
    by_device: dict[torch.device, list[torch.cuda.Stream]] = _streams.__dict__.setdefault("by_device", {})
    have = by_device.setdefault(device, [])
    while len(have) < count:
        have.append(torch.cuda.Stream(device))
    return have[:count]


class ParallelBranches(nn.ModuleList):
    """A module list whose modules take one input each and may run concurrently (see the module doc).

    Keeps :class:`~torch.nn.ModuleList`'s state-dict keys (``branches.0.…``), so checkpoints load as before.

    Attributes:
        parallel: run the branches on CUDA streams of their own (CUDA inputs only).
    """

    FUSE_CHILDREN_ONLY = True  # torch.fx: trace each branch on its own, keep this module a leaf

    def __init__(self, modules: list[nn.Module] | None = None) -> None:
        super().__init__(modules)
        self.parallel = False

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """``[branch(x) for branch, x in zip(self, xs)]``, on several CUDA streams when ``parallel``."""
        if not self.parallel or len(self) < 2 or not xs[0].is_cuda:
            return [branch(x) for branch, x in zip(self, xs)]
        current = torch.cuda.current_stream(xs[0].device)
        streams = side_streams(xs[0].device, len(self) - 1)
        for s in streams:
            s.wait_stream(current)
        outs: list[torch.Tensor] = []
        for branch, x, s in zip(list(self)[1:], xs[1:], streams):
            with torch.cuda.stream(s):
                outs.append(branch(x))
        first = self[0](xs[0])
        for s in streams:
            current.wait_stream(s)
        return [first, *outs]


def set_parallel_branches(model: nn.Module, enabled: bool) -> int:
    """Set ``parallel`` on every :class:`ParallelBranches` of ``model``; returns how many there are."""
    found = [m for m in model.modules() if isinstance(m, ParallelBranches)]
    for m in found:
        m.parallel = enabled
    return len(found)
