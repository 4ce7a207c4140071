"""The inference graph every backend serves: ``prepare_inference(model)`` (one home).

A trained pose network or detector is a training graph: every convolution is followed by a
BatchNorm that, in eval mode, is a per-channel affine map ``y = γ (x − μ) / √(σ² + ε) + β`` with
fixed statistics. Folding it into the convolution before it (scale the weight rows, shift the
bias) gives the same function up to float rounding and removes one full read/write of the
activation per BatchNorm (309 BatchNorm kernels in one STIP-W32 replay, issue 13).

Pairs are found from the data flow, not from names: the network is traced with
:func:`torch.fx.symbolic_trace` (the graph is only read, never served) and a BatchNorm is
folded into the convolution / linear layer before it only when

* the BatchNorm's single input is that layer's output and nothing else reads that output;
* the BatchNorm is called once, uses running statistics, and its parent module also holds
  the layer (so the folded layer can replace it in that slot);
* every call of the layer (a layer may be shared, as in RTMDet's head) is such a pair, each
  through its own slot, so replacing the slot changes exactly one call site.

Anything else stays unfolded and is logged. The folded module keeps its class, attributes and
``spec`` (the served graph is the same ``nn.Module`` type with ``nn.Identity`` where a BatchNorm
was), and :func:`prepare_inference` checks the folded network against the original on a random
probe before returning it (:class:`~stip_rt.errors.BackendError` on a mismatch: a wrong pair is
never served silently).

Training-only branches: every network here computes only its inference output in eval mode
(STIPNet's part/mask/kernel-energy heads run only in ``forward_train``), so eval mode is all
the pruning needed; their unused weights stay (they cost memory, not time).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

from ..errors import BackendError

log = logging.getLogger(__name__)

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_Layer: TypeAlias = _ConvNd | nn.Linear  # what a BatchNorm folds into (one of _LAYERS)


@dataclass(frozen=True)
class FoldReport:
    """What :func:`fold_batchnorm` did.

    Attributes:
        folded: (layer path, BatchNorm path) of every folded pair.
        skipped: (BatchNorm path, reason) of every BatchNorm left in place.
    """

    folded: tuple[tuple[str, str], ...]
    skipped: tuple[tuple[str, str], ...]


def count_batchnorm(model: nn.Module) -> int:
    """BatchNorm modules in ``model`` (each shared module counted once)."""
    return sum(isinstance(m, _BN) for m in model.modules())


def _parent(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    parent, _, name = path.rpartition(".")
    return (root.get_submodule(parent) if parent else root), name


def _slot_of(parent: nn.Module, layer: nn.Module) -> str | None:
    """The attribute name under which ``parent`` holds ``layer`` directly (first one), or None."""
    for name, child in parent.named_children():
        if child is layer:
            return name
    return None


def _tensor(module: nn.Module, name: str) -> torch.Tensor | None:
    """``module.<name>`` (a parameter or buffer), or None where it is unset."""
    value = getattr(module, name)
    return value if isinstance(value, torch.Tensor) else None


def _folded(layer: _Layer, bn: _BatchNorm) -> nn.Module:
    """A new layer equal to ``bn(layer(x))`` in eval mode (computed in float64, stored in the layer's dtype)."""
    out = copy.deepcopy(layer)
    weight, bias = _tensor(layer, "weight"), _tensor(layer, "bias")
    mean, var = _tensor(bn, "running_mean"), _tensor(bn, "running_var")
    if weight is None or mean is None or var is None:  # ruled out by _why_not
        raise BackendError(f"fold_batchnorm: {type(layer).__name__} → {type(bn).__name__} has no weight or statistics")
    dtype = weight.dtype
    w = weight.detach().double()
    b = bias.detach().double() if bias is not None else None
    rm, rv = mean.double(), var.double()
    bn_w, bn_b = _tensor(bn, "weight"), _tensor(bn, "bias")
    bw = bn_w.detach().double() if bn_w is not None else None
    bb = bn_b.detach().double() if bn_b is not None else None
    if isinstance(layer, nn.Linear):
        if bw is None:
            bw = torch.ones_like(rm)
        if bb is None:
            bb = torch.zeros_like(rm)
        fw, fb = fuse_linear_bn_weights(w, b, rm, rv, bn.eps, bw, bb)
    else:
        transpose = isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
        fw, fb = fuse_conv_bn_weights(w, b, rm, rv, bn.eps, bw, bb, transpose=transpose)
    out.weight = nn.Parameter(fw.to(dtype), requires_grad=False)
    out.bias = nn.Parameter(fb.to(dtype), requires_grad=False)
    return out


def _why_not(layer: _Layer, bn: _BatchNorm) -> str | None:
    """Why ``layer`` → ``bn`` cannot be folded, or None."""
    if bn.running_mean is None or bn.running_var is None or not bn.track_running_stats:
        return "no running statistics"
    channels = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    if channels != bn.num_features:
        return f"{channels} output channels vs {bn.num_features} BatchNorm features"
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) and layer.groups != 1:
        return "grouped transposed convolution"
    if isinstance(layer, nn.Linear) and not isinstance(bn, nn.BatchNorm1d):
        return "linear layer before a 2-D/3-D BatchNorm"
    return None


def _input_layer(node: torch.fx.Node, modules: dict[str, nn.Module]) -> tuple[_Layer | None, str | None]:
    """The layer whose output is BatchNorm ``node``'s single input, or (None, why there is none)."""
    src = node.args[0] if node.args else None
    if len(node.args) != 1 or node.kwargs or not isinstance(src, torch.fx.Node) or src.op != "call_module":
        return None, "input is not a module's output"
    layer = modules[str(src.target)]
    if not isinstance(layer, _LAYERS):
        return None, f"input comes from {type(layer).__name__}"
    if len(src.users) != 1:
        return None, "the layer's output is also read elsewhere"
    return layer, None


def fold_batchnorm(model: nn.Module) -> FoldReport:
    """Fold every safely foldable BatchNorm of ``model`` (eval mode) into the layer before it, in place.

    Each folded pair becomes a new layer in the layer's slot and ``nn.Identity`` in the
    BatchNorm's slot; see the module docstring for the rules. ``model`` must be in eval mode.

    Returns:
        A :class:`FoldReport`; skipped BatchNorms are also logged (info level).

    Raises:
        BackendError: ``model`` is in training mode.
    """
    if model.training:
        raise BackendError(f"fold_batchnorm: {type(model).__name__} is in training mode; call .eval() first")
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as e:  # fx raises many types on untraceable Python control flow
        why = f"not traceable by torch.fx ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        log.warning("BatchNorm folding skipped for %s: %s", type(model).__name__, why)
        return FoldReport((), tuple((name, why) for name, m in model.named_modules() if isinstance(m, _BN)))
    modules = dict(model.named_modules())
    calls: dict[int, list[torch.fx.Node]] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls.setdefault(id(modules[node.target]), []).append(node)
    # slots[id(layer)]: every (parent, name) holding that layer object in the module tree
    slots: dict[int, list[tuple[nn.Module, str]]] = {}
    for path, m in model.named_modules(remove_duplicate=False):
        if path:
            slots.setdefault(id(m), []).append(_parent(model, path))

    plans: dict[int, list[tuple[str, nn.Module, str, _Layer, str]]] = {}  # id(layer) -> per call site
    skipped: list[tuple[str, str]] = []
    bn_done: set[int] = set()
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        bn = modules[node.target]
        if not isinstance(bn, _BN) or id(bn) in bn_done:
            continue
        bn_done.add(id(bn))
        layer: _Layer | None = None
        if len(calls[id(bn)]) != 1:
            reason: str | None = "BatchNorm called more than once"
        else:
            layer, reason = _input_layer(node, modules)
        if layer is not None and reason is None:
            reason = _why_not(layer, bn)
        if layer is not None and reason is None:
            parent, bn_name = _parent(model, node.target)
            slot = _slot_of(parent, layer)
            if slot is None:
                reason = "the layer is not held by the BatchNorm's parent module"
            else:
                plans.setdefault(id(layer), []).append((node.target, parent, bn_name, layer, slot))
        if reason is not None:
            skipped.append((node.target, reason))
    folded: list[tuple[str, str]] = []
    for key, sites in plans.items():
        owners = {(id(p), s) for _, p, _, _, s in sites}
        if len(sites) != len(calls[key]) or len(owners) != len(sites) or len(slots[key]) != len(sites):
            why = "the layer is shared with a call site that is not this pair"
            skipped += [(bn_path, why) for bn_path, *_ in sites]
            continue
        for bn_path, parent, bn_name, layer, slot in sites:
            bn = getattr(parent, bn_name)
            setattr(parent, slot, _folded(layer, bn))
            setattr(parent, bn_name, nn.Identity())
            prefix = bn_path.rpartition(".")[0]
            folded.append((f"{prefix}.{slot}" if prefix else slot, bn_path))
    # BatchNorms never called in eval mode (training-only heads) are not in the graph
    for path, m in model.named_modules():
        if isinstance(m, _BN) and id(m) not in bn_done:
            skipped.append((path, "not used in inference"))
    for path, reason in skipped:
        log.info("BatchNorm %s of %s left unfolded: %s", path, type(model).__name__, reason)
    return FoldReport(tuple(folded), tuple(skipped))


def _max_rel_err(a: object, b: Any) -> float:
    """max |a − b| / max |b| over (nested) tensor outputs."""
    if isinstance(a, torch.Tensor):
        scale = float(b.abs().max()) if b.numel() else 0.0
        return float((a.double() - b.double()).abs().max()) / max(scale, 1e-30) if a.numel() else 0.0
    if isinstance(a, (tuple, list)):
        return max((_max_rel_err(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, dict):
        return max((_max_rel_err(a[k], b[k]) for k in a), default=0.0)
    return 0.0


def _finite(out: object) -> bool:
    """Whether every tensor of a (nested) network output is finite."""
    if isinstance(out, torch.Tensor):
        return bool(torch.isfinite(out).all())
    if isinstance(out, (tuple, list)):
        return all(_finite(x) for x in out)
    if isinstance(out, dict):
        return all(_finite(x) for x in out.values())
    return True


def prepare_inference(
    model: nn.Module,
    fold: bool = True,
    probe_size: Sequence[int] | None = (64, 64),
    rtol: float | None = None,
) -> nn.Module:
    """The network as every backend serves it: a deep copy, eval mode, BatchNorm folded.

    Args:
        model: the network (not modified).
        fold: fold BatchNorm into the preceding layers (``False``: only copy + eval, for comparisons).
        probe_size: (H, W) of the random probe (batch 2) that checks the folded copy against
            ``model`` (multiples of 32 suit every network here); None skips the check.
        rtol: largest allowed max |folded − original| / max |original| on the probe; default 1e-4
            for a model on the CPU, 5e-3 on a GPU (TF32 convolutions round differently in the two).
            A wrong pair gives errors of order 1 with trained statistics.

    Returns:
        The prepared copy (same class; ``requires_grad`` off on every parameter).

    Raises:
        BackendError: the folded copy does not reproduce ``model`` on the probe.
    """
    net = copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if not fold or count_batchnorm(net) == 0:
        return net
    report = fold_batchnorm(net)
    log.info(
        "prepared %s for inference: %d BatchNorm folded, %d left",
        type(model).__name__,
        len(report.folded),
        len(report.skipped),
    )
    if probe_size is not None and report.folded:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.float32
        if dtype not in (torch.float32, torch.float64):
            log.info("folding check skipped: %s weights are %s", type(model).__name__, dtype)
            return net
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 3, *probe_size, generator=gen).to(device=device, dtype=dtype)
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                want = model(x)
                got = net.to(device)(x)
        finally:
            model.train(was)
        if not _finite(want):  # broken weights, not folding: the run names the checkpoint and frame
            log.warning("%s gives NaN or inf on a random probe: its weights are broken", type(model).__name__)
            return net
        err = _max_rel_err(got, want)
        if rtol is None:
            rtol = 1e-4 if device.type == "cpu" else 5e-3
        if not err <= rtol:  # also catches NaN
            raise BackendError(
                f"BatchNorm folding changed the output of {type(model).__name__} "
                f"(max relative error {err:.2e} > {rtol:g} on a random probe); serve it with fold=False"
            )
    return net
