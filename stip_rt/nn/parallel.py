"""Independent sub-networks run side by side on CUDA streams: HRNet's branches and fuse outputs.

An HRNet module runs its 2–4 branches (chains of BasicBlocks at different resolutions) one after
the other, although none reads another's output, and then computes each output of its fuse
layer (the sum of every branch brought to that resolution) one after the other too, although
each reads only the branch outputs. At batch 1 each of their convolutions is a small kernel that
occupies a few of the GPU's multiprocessors, so those kernels could run at the same time.
:class:`ParallelBranches` is the module list of the branches (module j takes input j) and
:class:`ParallelRows` the list of fuse outputs (each module takes all inputs). With ``parallel``
set (the ``cuda-fast`` backend's ``parallel_branches``) and CUDA inputs, module 0 (the highest
resolution, the most work) runs on the current stream and every other module on a side stream of
its own:

* the side streams first wait for the current stream (their inputs were made there), and the
  current stream waits for all of them before the call returns, so what comes after sees every
  output, and memory handed between the streams is never reused while the other still reads it
  (work on a side stream happens only between that fork and that join);
* inside a CUDA graph capture this fork and join is how work on several streams is captured into
  one graph; its replay then runs the modules' kernels concurrently;
* the result is the same, bit for bit: the same kernels on the same inputs, only their order on
  the GPU changes.

Off by default: whether and how much it helps is to be measured on a GPU (``stip-rt bench
--backends cuda-fast,cuda-fast+branches``). Without ``parallel``, off CUDA, or while
``torch.fx`` traces it, it is a plain loop; ``torch.fx`` keeps each list as one module
(:func:`stip_rt.nn.fuse.fuse_conv_relu` fuses inside each of its modules, ``FUSE_CHILDREN_ONLY``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

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


class _ParallelList(nn.ModuleList):
    """Modules that read the same inputs' list and may run concurrently; subclasses say what each reads."""

    FUSE_CHILDREN_ONLY = True  # torch.fx: trace each module on its own, keep this list one call

    def __init__(self, modules: Sequence[nn.Module] | None = None) -> None:
        super().__init__(modules)
        self.parallel = False

    def _input(self, xs: list[torch.Tensor], j: int) -> object:
        raise NotImplementedError

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each module on its input, on several CUDA streams when ``parallel`` (see the module doc)."""
        if not self.parallel or len(self) < 2 or not xs[0].is_cuda:
            return [m(self._input(xs, j)) for j, m in enumerate(self)]
        current = torch.cuda.current_stream(xs[0].device)
        streams = side_streams(xs[0].device, len(self) - 1)
        for s in streams:
            s.wait_stream(current)
        outs: list[torch.Tensor] = []
        for j, (m, s) in enumerate(zip(list(self)[1:], streams), start=1):
            with torch.cuda.stream(s):
                outs.append(m(self._input(xs, j)))
        first = self[0](self._input(xs, 0))
        for s in streams:
            current.wait_stream(s)
        return [first, *outs]


class ParallelBranches(_ParallelList):
    """HRNet's branches: module j takes input j (see the module doc).

    Keeps :class:`~torch.nn.ModuleList`'s state-dict keys (``branches.0.…``), so checkpoints load as before.

    Attributes:
        parallel: run the branches on CUDA streams of their own (CUDA inputs only).
    """

    def _input(self, xs: list[torch.Tensor], j: int) -> torch.Tensor:
        return xs[j]


class ParallelRows(_ParallelList):
    """The outputs of an HRNet fuse layer: every module (a :class:`~stip_rt.nn.hrnet.FuseRow`) reads all
    the branch outputs and makes one output (``fuse_layers.i.…`` keys as before).

    Attributes:
        parallel: compute the outputs on CUDA streams of their own (CUDA inputs only).
    """

    def _input(self, xs: list[torch.Tensor], j: int) -> list[torch.Tensor]:
        return xs


def set_parallel_branches(model: nn.Module, enabled: bool) -> int:
    """Set ``parallel`` on every :class:`ParallelBranches` and :class:`ParallelRows` of ``model``; returns
    how many there are."""
    found = [m for m in model.modules() if isinstance(m, _ParallelList)]
    for m in found:
        m.parallel = enabled
    return len(found)
