"""The IaP op: STIP's per-instance, per-pixel dynamic 1×1 convolution (one home).

    score[n,k,p] = (1/C) · Σ_c f[n,c,p] · ( b[k·C+c] + Σ_c' W[k·C+c, c'] · e[n,c',p] )

``e`` are the kernel embeddings, ``f`` the refined features, ``W, b`` the kernel
generator (a 1×1 conv C → K·C). :func:`iap_reference` materialises the N×K×C×H×W
kernels exactly as the official code does. :func:`iap` runs the fused op
``torch.ops.stip_rt.iap`` (one graph node for torch.compile / torch.export / ONNX),
which never does; its implementation is picked per call:

============  ====================================================================
``auto``      CUDA tensors → Triton kernels; any other device → the tiled PyTorch path
``reference`` the literal formula in standard PyTorch ops (no custom op: exportable)
``cpu``       the tiled PyTorch path (:mod:`stip_rt.nn.iap_cpu`; runs on any device)
``triton``    the Triton kernels (:mod:`stip_rt.nn.iap_triton`; CUDA, or CPU tensors
              when ``TRITON_INTERPRET=1`` was set before that module was imported)
============  ====================================================================

Choose with :func:`use_iap_impl` (context manager, current thread/context),
:func:`set_iap_impl` (process default) or the ``STIP_RT_IAP_IMPL`` environment variable.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import types
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F

from stip_rt.errors import BackendError, ConfigError, did_you_mean
from stip_rt.nn.iap_cpu import iap_backward_cpu, iap_forward_cpu

log = logging.getLogger(__name__)

IapImpl = Literal["auto", "reference", "cpu", "triton"]
IAP_IMPLS: tuple[str, ...] = ("auto", "reference", "cpu", "triton")
ENV_VAR = "STIP_RT_IAP_IMPL"


def _check_impl(name: str, where: str) -> str:
    """Validate an implementation name."""
    if name not in IAP_IMPLS:
        raise ConfigError(
            f"{where}: unknown IaP implementation {name!r}{did_you_mean(name, IAP_IMPLS)}; "
            f"expected one of {', '.join(IAP_IMPLS)}"
        )
    return name


_default_impl: str = _check_impl(os.environ.get(ENV_VAR, "auto"), f"environment variable {ENV_VAR}")
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("stip_rt_iap_impl", default=None)


def set_iap_impl(name: IapImpl) -> None:
    """Set the process-wide default implementation (see the module docstring).

    Raises:
        ConfigError: ``name`` is not one of ``auto, reference, cpu, triton``.
    """
    global _default_impl
    _default_impl = _check_impl(name, "set_iap_impl")


@torch.compiler.assume_constant_result
def get_iap_impl() -> str:
    """The implementation in force here: the innermost :func:`use_iap_impl`, else the default."""
    override = _override.get()
    return _default_impl if override is None else override


@contextlib.contextmanager
def use_iap_impl(name: IapImpl) -> Iterator[None]:
    """Force an implementation inside a ``with`` block (this thread/context only).

    ``use_iap_impl("reference")`` gives the standard-op flavour for ONNX export;
    ``"auto"`` (or ``"cpu"``/``"triton"``) keeps the single ``stip_rt::iap`` node.

    Raises:
        ConfigError: unknown name.
    """
    token = _override.set(_check_impl(name, "use_iap_impl"))
    try:
        yield
    finally:
        _override.reset(token)


def _resolve(e: torch.Tensor) -> str:
    """The concrete implementation (reference, cpu or triton) for inputs like ``e``."""
    impl = get_iap_impl()
    if impl != "auto":
        return impl
    if e.device.type == "cuda":
        try:
            from stip_rt.nn import iap_triton  # lazy: importing triton costs ~1 s
        except ImportError:
            usable = False
        else:
            usable = iap_triton.available() and e.dtype in iap_triton.SUPPORTED_DTYPES
        if usable:
            return "triton"
        _warn_once(f"IaP: Triton kernels unavailable for {e.dtype} on {e.device}; using the tiled PyTorch path")
    return "cpu"


@functools.cache
def _warn_once(message: str) -> None:
    """Log a fallback once per distinct message."""
    log.warning(message)


def _triton() -> types.ModuleType:
    """Import the Triton implementation, as a BackendError when it cannot run."""
    try:
        from stip_rt.nn import iap_triton
    except ImportError as exc:
        raise BackendError(
            f"IaP implementation 'triton' needs the triton package ({exc}); install stip-rt[triton] or use 'auto'/'cpu'"
        ) from exc
    return iap_triton


def iap_reference(e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The literal formula (the ground truth in tests).

    Args:
        e: (N, C, H, W) kernel embeddings.
        f: (N, C, H, W) refined features.
        weight: (K·C, C) or (K·C, C, 1, 1) generator weight, row ``k·C + c``.
        bias: (K·C,) generator bias, or None.

    Returns:
        (N, K, H, W) heatmaps in the dtype of ``f``.
    """
    n, c, h, w = f.shape
    kernels = F.conv2d(e, weight.reshape(weight.shape[0], c, 1, 1), bias)  # (N, K·C, H, W)
    kernels = kernels.reshape(n, weight.shape[0] // c, c, h, w)
    return torch.mean(kernels * f.unsqueeze(1), dim=2)


def _up2(e: torch.Tensor) -> torch.Tensor:
    """×2 bilinear upsample, ``align_corners=False`` (the network's ``up``)."""
    return F.interpolate(e, scale_factor=2, mode="bilinear", align_corners=False)


def _reference(
    e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, upsample: bool
) -> torch.Tensor:
    """Reference with the op's argument conventions (upsample first, as the network does)."""
    return iap_reference(_up2(e) if upsample else e, f, weight, bias)


def _check(e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, upsample: bool) -> None:
    """Shape/dtype contract of the op (programming errors, so ValueError)."""
    if e.dim() != 4 or f.dim() != 4:
        raise ValueError(f"iap: e and f must be (N, C, H, W); got e {tuple(e.shape)}, f {tuple(f.shape)}")
    n, c, h, w = f.shape
    want = (n, c, h // 2, w // 2) if upsample else (n, c, h, w)
    if tuple(e.shape) != want or (upsample and (h % 2 or w % 2)):
        raise ValueError(f"iap(upsample={upsample}): e is {tuple(e.shape)}, expected {want} for f {tuple(f.shape)}")
    if weight.dim() != 2 or weight.shape[1] != c or weight.shape[0] % c or weight.shape[0] == 0:
        raise ValueError(f"iap: weight must be (K·C, C) with C={c}; got {tuple(weight.shape)}")
    if tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"iap: bias must be ({weight.shape[0]},); got {tuple(bias.shape)}")
    if e.dtype != f.dtype:
        raise ValueError(f"iap: e and f must share a dtype; got {e.dtype} and {f.dtype}")


@torch.library.custom_op("stip_rt::iap", mutates_args=())
def iap_op(e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, upsample: bool) -> torch.Tensor:
    """The fused op ``torch.ops.stip_rt.iap``: (N,C,h,w), (N,C,H,W), (K·C,C), (K·C,), bool → (N,K,H,W)."""
    _check(e, f, weight, bias, upsample)
    impl = _resolve(e)
    if impl == "triton":
        return _triton().iap_forward_triton(e, f, weight, bias, upsample)
    if impl == "cpu":
        return iap_forward_cpu(e, f, weight, bias, upsample)
    with torch.no_grad():
        return _reference(e, f, weight.to(e.dtype), bias.to(e.dtype), upsample)


@iap_op.register_fake
def _iap_fake(
    e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, upsample: bool
) -> torch.Tensor:
    n, c, h, w = f.shape
    return f.new_empty((n, weight.shape[0] // c, h, w), dtype=e.dtype)


@torch.library.custom_op("stip_rt::iap_backward", mutates_args=())
def iap_backward_op(
    grad: torch.Tensor, e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, upsample: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ``(de, df, dW, db)`` of :func:`iap_op` (STIP_SPEC §6; Z is recomputed, never stored).

    With ``upsample`` the plain backward runs on ``up(e)`` and ``de`` is mapped back through the
    adjoint of the bilinear upsample.
    """
    grad = grad.contiguous()
    impl = _resolve(e)
    if impl == "reference":
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (e, f, weight, bias)]
            out = _reference(leaves[0], leaves[1], leaves[2].to(e.dtype), leaves[3].to(e.dtype), upsample)
            de, df, dw, db = torch.autograd.grad(out, leaves, grad)
        return de, df, dw, db
    e_full = _up2(e) if upsample else e
    if impl == "triton":
        de, df, dw, db = _triton().iap_backward_triton(grad, e_full, f, weight, bias)
    else:
        de, df, dw, db = iap_backward_cpu(grad, e_full, f, weight, bias)
    if upsample:
        de = torch.ops.aten.upsample_bilinear2d_backward(de, list(f.shape[-2:]), list(e.shape), False, 2.0, 2.0)
    return de, df, dw, db


@iap_backward_op.register_fake
def _iap_backward_fake(
    grad: torch.Tensor, e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, upsample: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.empty_like(e), torch.empty_like(f), torch.empty_like(weight), torch.empty_like(bias)


def _setup_context(ctx, inputs, output) -> None:
    e, f, weight, bias, upsample = inputs
    ctx.save_for_backward(e, f, weight, bias)
    ctx.upsample = upsample


def _backward(ctx, grad: torch.Tensor):
    e, f, weight, bias = ctx.saved_tensors
    de, df, dw, db = iap_backward_op(grad, e, f, weight, bias, ctx.upsample)
    return de, df, dw, db, None


iap_op.register_autograd(_backward, setup_context=_setup_context)


def iap(
    e: torch.Tensor,
    f: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    upsample: bool = False,
) -> torch.Tensor:
    """IaP dynamic convolution through the implementation in force (:func:`get_iap_impl`).

    Args:
        e: (N, C, H, W) kernel embeddings, or (N, C, H/2, W/2) with ``upsample``.
        f: (N, C, H, W) refined features (same dtype as ``e``).
        weight: (K·C, C) or (K·C, C, 1, 1) generator weight, row ``k·C + c``.
        bias: (K·C,) generator bias, or None.
        upsample: ``e`` is at half resolution and is upsampled ×2 (bilinear,
            align_corners=False) before the generator, as the network does. The fused
            implementations fold the upsample into the op (STIP_SPEC §1.5); equal to
            upsample-then-generate within float rounding.

    Returns:
        (N, K, H, W) scores in the dtype of ``e`` and ``f``.

    Raises:
        ValueError: inconsistent shapes or dtypes.
        BackendError: ``triton`` forced where it cannot run.
    """
    weight2 = weight.reshape(weight.shape[0], -1)
    bias1 = weight2.new_zeros(weight2.shape[0]) if bias is None else bias
    if get_iap_impl() == "reference":
        _check(e, f, weight2, bias1, upsample)
        return _reference(e, f, weight2, bias1, upsample)
    return iap_op(e, f, weight2, bias1, upsample)
