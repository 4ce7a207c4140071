"""Convolution + bias + ReLU, and convolution + bias + residual + ReLU, as one cuDNN call each.

After BatchNorm folding (:mod:`stip_rt.nn.fold`) a served HRNet/STIP is ~300 convolutions whose
outputs go through a separate bias add, a ReLU and, in every residual block and fuse layer, an
add: on CUDA each is a kernel of its own reading and writing the whole activation (one STIP-W32
batch-1 replay, folded: 1,112 kernels, 470 adds, issue 13). cuDNN fuses the epilogue into the
convolution: ``torch.cudnn_convolution_relu`` computes ``relu(conv(x) + bias)`` and
``torch.cudnn_convolution_add_relu`` computes ``relu(conv(x) + bias + z)``.

:func:`fuse_conv_relu` traces the (folded) network with :func:`torch.fx.symbolic_trace` and
rewrites two patterns (``nn.Identity`` calls, the folded BatchNorms' slots, are dropped first):

* ``relu(conv(x))`` → :class:`ConvReLU` ``(x)``;
* ``relu(conv(x) + z)`` or ``relu(z + conv(x))`` → :class:`ConvAddReLU` ``(x, z)``,

where ``conv`` is a 2-D convolution with numeric padding and zero padding mode whose output
(and the sum's) has no other reader. A module marked ``FUSE_CHILDREN_ONLY`` (HRNet's
:class:`~stip_rt.nn.parallel.ParallelBranches`, which may run its children on CUDA streams of
their own) stays one call in the graph, and each of its children is fused on its own. The result
is a ``GraphModule`` computing the same function. Off CUDA, and for dtypes or shapes cuDNN's fused
path does not take, each fused module runs the original ops in the original order (bit-identical
on the CPU). A fused call that cuDNN refuses (``CUDNN_STATUS_NOT_SUPPORTED`` for some
configurations) falls back to the plain ops for that module for good, logged once: the first call
happens in the backend's warm-up, outside any CUDA graph capture.
"""

from __future__ import annotations

import copy
import logging
import operator

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

_FUSED_DTYPES = (torch.float16, torch.float32)
_RELU_FUNCTIONS = (F.relu, torch.relu)
_ADD_FUNCTIONS = (operator.add, torch.add)


class _FusedConv(nn.Module):
    """Shared state of the two fused modules: the convolution and whether cuDNN took it."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if isinstance(conv.padding, str):
            raise ValueError(f"fused convolution: padding '{conv.padding}' is not numeric")
        self.conv = conv
        self.cudnn_ok = True  # set False for good by the first refused call
        # stride, padding, dilation as the cuDNN ops take them
        self._geometry = (list(conv.stride), [int(p) for p in conv.padding], list(conv.dilation))

    def _use_cudnn(self, x: torch.Tensor) -> bool:
        return self.cudnn_ok and x.is_cuda and x.dtype in _FUSED_DTYPES and self.conv.weight.dtype == x.dtype

    def _refused(self, err: RuntimeError) -> None:
        self.cudnn_ok = False
        c = self.conv
        log.info(
            "cuDNN refused the fused %s (%d→%d, kernel %s, stride %s, dilation %s, groups %d): %s; plain ops used",
            type(self).__name__,
            c.in_channels,
            c.out_channels,
            c.kernel_size,
            c.stride,
            c.dilation,
            c.groups,
            str(err).splitlines()[0] if str(err) else type(err).__name__,
        )

    def _out_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """(N, C_out, H_out, W_out) of the convolution for input ``x``."""
        c = self.conv
        hw = []
        for size, k, s, p, d in zip(x.shape[2:], c.kernel_size, *self._geometry):
            hw.append((int(size) + 2 * p - d * (k - 1) - 1) // s + 1)
        return (x.shape[0], c.out_channels, *hw)


class ConvReLU(_FusedConv):
    """``relu(conv(x))`` as one ``torch.cudnn_convolution_relu`` call on CUDA."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if self._use_cudnn(x):
            try:
                return torch.cudnn_convolution_relu(x, c.weight, c.bias, *self._geometry, c.groups)
            except RuntimeError as err:
                self._refused(err)
        return F.relu(c(x))


class ConvAddReLU(_FusedConv):
    """``relu(conv(x) + z)`` as one ``torch.cudnn_convolution_add_relu`` call on CUDA.

    Args (forward):
        x: the convolution's input.
        z: the residual, of the convolution's output shape (anything else, e.g. a broadcast
            add, runs the plain ops).
        conv_first: the original sum was ``conv(x) + z`` (True) or ``z + conv(x)``; the plain
            ops keep that order.
    """

    def __init__(self, conv: nn.Conv2d, conv_first: bool = True) -> None:
        super().__init__(conv)
        self.conv_first = conv_first

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if self._use_cudnn(x) and z.dtype == x.dtype and tuple(z.shape) == self._out_shape(x):
            try:
                return torch.cudnn_convolution_add_relu(x, c.weight, z, 1.0, c.bias, *self._geometry, c.groups)
            except RuntimeError as err:
                self._refused(err)
        y = c(x)
        return F.relu(y + z if self.conv_first else z + y)


def _is_relu(node: torch.fx.Node, modules: dict[str, nn.Module]) -> bool:
    if len(node.args) != 1 or node.kwargs:
        return False
    if node.op == "call_module":
        m = modules[str(node.target)]
        return isinstance(m, nn.ReLU) and not m.inplace
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS
    return node.op == "call_method" and node.target == "relu"


def _conv(node: object, modules: dict[str, nn.Module]) -> nn.Conv2d | None:
    """The ``nn.Conv2d`` that ``node`` calls, when it can be fused and its output has one reader."""
    if not isinstance(node, torch.fx.Node) or node.op != "call_module" or len(node.users) != 1:
        return None
    m = modules[str(node.target)]
    if type(m) is not nn.Conv2d or m.padding_mode != "zeros" or isinstance(m.padding, str):
        return None
    if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], torch.fx.Node):
        return None
    return m


def _is_add(node: object) -> bool:
    return (
        isinstance(node, torch.fx.Node)
        and node.op == "call_function"
        and node.target in _ADD_FUNCTIONS
        and len(node.args) == 2
        and not node.kwargs
        and all(isinstance(a, torch.fx.Node) for a in node.args)
        and len(node.users) == 1
    )


def fuse_conv_relu(model: nn.Module) -> tuple[nn.Module, int, int]:
    """``model`` with every conv→ReLU and conv→add→ReLU replaced by a fused module (see the module doc).

    Args:
        model: an eval-mode network traceable by :func:`torch.fx.symbolic_trace` (not modified;
            the returned module shares its convolutions).

    Returns:
        (module, conv_relu, conv_add_relu): a ``GraphModule`` (``model`` itself, unchanged, when
        it cannot be traced or nothing matched) and the number of sites of each pattern.
    """
    try:
        gm = torch.fx.GraphModule(model, _LeafTracer().trace(model), type(model).__name__)
    except Exception as e:  # fx raises many types on untraceable Python control flow
        log.warning("conv+ReLU fusion skipped for %s: not traceable by torch.fx (%s)", type(model).__name__, e)
        return model, 0, 0
    inner = _fuse_children_of_leaves(gm)
    graph = gm.graph
    modules = dict(gm.named_modules())
    for node in list(graph.nodes):
        if node.op == "call_module" and isinstance(modules[str(node.target)], nn.Identity) and len(node.args) == 1:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    counts = {"relu": 0, "add": 0}
    for node in list(graph.nodes):
        if not _is_relu(node, modules):
            continue
        src = node.args[0]
        fused: nn.Module | None = None
        args: tuple[torch.fx.Node, ...] = ()
        dead: list[torch.fx.Node] = []
        conv = _conv(src, modules)
        if conv is not None:
            assert isinstance(src, torch.fx.Node)
            fused, args, dead, kind = ConvReLU(conv), (src.args[0],), [src], "relu"  # type: ignore[assignment]
        elif _is_add(src):
            assert isinstance(src, torch.fx.Node)
            a, b = src.args
            for first, (conv_node, other) in ((True, (a, b)), (False, (b, a))):
                conv = _conv(conv_node, modules)
                if conv is not None:
                    assert isinstance(conv_node, torch.fx.Node) and isinstance(other, torch.fx.Node)
                    fused, args, kind = ConvAddReLU(conv, conv_first=first), (conv_node.args[0], other), "add"  # type: ignore[assignment]
                    dead = [src, conv_node]
                    break
        if fused is None:
            continue
        name = f"fused_conv_{kind}_{counts[kind]}"
        counts[kind] += 1
        gm.add_submodule(name, fused)
        with graph.inserting_before(node):
            new = graph.call_module(name, args)
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        for d in dead:  # the add before the conv: each reads the next
            graph.erase_node(d)
    relu, add = counts["relu"] + inner[0], counts["add"] + inner[1]
    if not relu and not add:
        return model, 0, 0
    graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    log.info("fused %d conv+ReLU and %d conv+add+ReLU sites of %s for cuDNN", relu, add, type(model).__name__)
    return gm, relu, add


class _LeafTracer(torch.fx.Tracer):
    """fx's tracer, keeping modules marked ``FUSE_CHILDREN_ONLY`` (e.g. ParallelBranches) as single calls."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return getattr(m, "FUSE_CHILDREN_ONLY", False) or super().is_leaf_module(m, module_qualified_name)


def _fuse_children_of_leaves(gm: torch.fx.GraphModule) -> tuple[int, int]:
    """Fuse inside every ``FUSE_CHILDREN_ONLY`` module of ``gm``, each child on its own.

    The module itself is replaced in ``gm`` by a shallow copy holding the fused children (the
    traced model keeps its own); returns the (conv_relu, conv_add_relu) counts of the children.
    """
    relu = add = 0
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        leaf = gm.get_submodule(str(node.target))
        if not getattr(leaf, "FUSE_CHILDREN_ONLY", False):
            continue
        fused = copy.copy(leaf)
        fused._modules = dict(leaf._modules)  # a container of its own, the same children until replaced
        for name, child in leaf.named_children():
            new, r, a = fuse_conv_relu(child)
            fused._modules[name] = new
            relu, add = relu + r, add + a
        parent, _, attr = str(node.target).rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, attr, fused)
    return relu, add


def fusion_sites(model: nn.Module) -> tuple[int, list[str]]:
    """The fused sites of ``model`` (:func:`fuse_conv_relu`'s output) and those cuDNN refused so far.

    Returns:
        (sites, refused): the number of fused modules, and for each one that fell back to the
        plain ops (after its first call was refused) ``kernel/stride/dilation`` of its convolution.
    """
    sites = [m for m in model.modules() if isinstance(m, _FusedConv)]
    refused = [f"{m.conv.kernel_size}/s{m.conv.stride}/d{m.conv.dilation}" for m in sites if not m.cudnn_ok]
    return len(sites), refused
