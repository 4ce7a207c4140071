"""The IaP op as a TensorRT Python plugin (QDP, ``tensorrt.plugin``) with an ahead-of-time Triton kernel.

The plugin ``stip_rt::IaP`` matches the ONNX node of the *plugin* export flavour
(:mod:`stip_rt.runtime.iap_onnx`): inputs ``e, f, weight, bias``, attributes ``upsample``,
``channels``, ``joints``; output (N, K, H, W) in the input dtype.

* ``@trtp.register`` — output shape from symbolic input shapes (the batch axis stays
  symbolic, so one definition serves the whole optimisation profile).
* ``@trtp.autotune`` — every position ``FP32|FP16`` (all inputs and the output share the
  type), and the block-size tactics of :data:`TACTICS`, timed by TensorRT at build time.
* ``@trtp.aot_impl`` — compiles :func:`iap_trt_kernel`, which calls the SAME Triton source
  as the eager op (:func:`stip_rt.nn.iap_triton.iap_fwd_kernel`, inlined), to PTX for the
  build GPU; the PTX is embedded in the engine, which then runs without Python.

TensorRT launches an AOT kernel with the arguments (input pointers, the int32 "extra
args", output pointers); :func:`iap_trt_kernel` only reorders the eager kernel's
arguments to that convention. Attributes are not serialized with an AOT implementation,
so everything the kernel needs is either baked into the PTX as a constexpr (``upsample``,
block sizes) or passed as an int32 extra arg (K, C, H, W).

Triton ≥ 3.3 appends two pointer parameters (global and profile scratch) to every kernel;
TensorRT does not pass them. They are never read when their sizes are 0, which
:func:`compile_iap_ptx` checks (a kernel that would need scratch memory is refused).

Everything except :func:`register_plugin` runs without TensorRT or a GPU (CI compiles the
PTX for sm_80 and sm_90 on a CPU-only machine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import triton
import triton.language as tl

from ..errors import BackendError
from ..nn.iap_triton import block_c, iap_fwd_kernel
from .iap_onnx import DOMAIN, OP_TYPE

log = logging.getLogger(__name__)

PLUGIN_ID = f"{DOMAIN}::{OP_TYPE}"


@dataclass(frozen=True)
class Tactic:
    """One AOT variant of the kernel that TensorRT may pick at build time."""

    block_p: int
    num_warps: int
    num_stages: int = 2


TACTICS: dict[int, Tactic] = {1: Tactic(64, 4), 2: Tactic(128, 4), 3: Tactic(128, 8, 3)}
"""Tactic id (TensorRT wants positive ints) → block size and warps; a subset of the eager autotune configs."""


@triton.jit
def iap_trt_kernel(
    e_ptr,
    f_ptr,
    w_ptr,
    b_ptr,
    K,
    C,
    H,
    W,
    out_ptr,
    UPSAMPLE: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    """TensorRT argument order (inputs, int32 extra args, output) around :func:`iap_fwd_kernel`."""
    iap_fwd_kernel(e_ptr, f_ptr, w_ptr, b_ptr, out_ptr, K, C, H, W, UPSAMPLE, BLOCK_C, BLOCK_P, INPUT_PRECISION)


@dataclass(frozen=True)
class AotKernel:
    """A compiled kernel ready for ``KernelLaunchParams``.

    Attributes:
        name: entry point in the PTX.
        ptx: PTX text.
        block_x: threads per block (num_warps · 32).
        shared_mem: dynamic shared memory in bytes.
        target: ``sm_XX`` it was compiled for.
    """

    name: str
    ptx: str
    block_x: int
    shared_mem: int
    target: str


def kernel_signature(dtype: str) -> dict[str, str]:
    """Triton signature of :func:`iap_trt_kernel` for ``fp16`` or ``fp32`` tensors."""
    if dtype not in ("fp16", "fp32"):
        raise BackendError(f"IaP plugin: dtype {dtype} is not supported (fp16 or fp32)")
    ptr = f"*{dtype}"
    return {
        "e_ptr": ptr,
        "f_ptr": ptr,
        "w_ptr": ptr,
        "b_ptr": ptr,
        "K": "i32",
        "C": "i32",
        "H": "i32",
        "W": "i32",
        "out_ptr": ptr,
        "UPSAMPLE": "constexpr",
        "BLOCK_C": "constexpr",
        "BLOCK_P": "constexpr",
        "INPUT_PRECISION": "constexpr",
    }


def compile_iap_ptx(
    dtype: str,
    channels: int,
    upsample: bool,
    tactic: Tactic = TACTICS[1],
    capability: int | None = None,
) -> AotKernel:
    """Compile :func:`iap_trt_kernel` to PTX.

    Args:
        dtype: ``fp16`` or ``fp32`` (the plugin's I/O type chosen by TensorRT).
        channels: C, fixes the constexpr BLOCK_C.
        upsample: ``e`` at half resolution (constexpr).
        tactic: block size and warps.
        capability: compute capability as an int (80, 90, ...) to compile for an explicit
            target without a GPU; None compiles for the current GPU.

    Returns:
        The kernel's name, PTX and launch needs.

    Raises:
        BackendError: compilation failed, or the kernel would need Triton scratch memory.
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    constexprs = {
        "UPSAMPLE": bool(upsample),
        "BLOCK_C": block_c(channels),
        "BLOCK_P": tactic.block_p,
        "INPUT_PRECISION": "ieee" if dtype == "fp32" else "tf32",
    }
    src = ASTSource(fn=iap_trt_kernel, signature=kernel_signature(dtype), constexprs=constexprs)
    target = GPUTarget("cuda", capability, 32) if capability is not None else None
    try:
        compiled = triton.compile(
            src, target=target, options={"num_warps": tactic.num_warps, "num_stages": tactic.num_stages}
        )
    except Exception as e:  # Triton raises CompilationError, RuntimeError (ptxas), ...
        where = f"sm_{capability}" if capability is not None else "the current GPU"
        raise BackendError(f"IaP plugin: Triton could not compile the kernel for {where}: {e}") from e
    md = compiled.metadata
    if getattr(md, "global_scratch_size", 0) or getattr(md, "profile_scratch_size", 0):
        raise BackendError("IaP plugin: the kernel needs Triton scratch memory, which TensorRT does not provide")
    arch = md.target.arch if hasattr(md, "target") else capability
    return AotKernel(md.name, compiled.asm["ptx"], md.num_warps * 32, md.shared, f"sm_{arch}")


def cdiv_int(a: int, b: int) -> int:
    """Ceiling division for ints (the same contract as ``trtp.cdiv`` on shape expressions)."""
    return -(-a // b)


def launch_dims(n: Any, h: Any, w: Any, tactic: Tactic, cdiv: Callable[[Any, int], Any] = cdiv_int) -> dict[str, Any]:
    """Grid and block of :func:`iap_trt_kernel` for N images of H×W output pixels.

    Works on ints (tests) and on TensorRT shape expressions (``cdiv=trtp.cdiv``), so the
    grid follows the batch size of the optimisation profile at run time.

    Returns:
        ``grid_x`` = cdiv(H·W, BLOCK_P), ``grid_y`` = N, ``grid_z`` = 1, ``block_x`` = num_warps·32.
    """
    return {"grid_x": cdiv(h * w, tactic.block_p), "grid_y": n, "grid_z": 1, "block_x": tactic.num_warps * 32}


_registered = False


def register_plugin() -> None:
    """Register ``stip_rt::IaP`` with TensorRT (idempotent). Must run before parsing a plugin ONNX.

    Raises:
        BackendError: TensorRT (with ``tensorrt.plugin``, 10.9+) is not importable.
    """
    global _registered
    if _registered:
        return
    try:
        import tensorrt as trt
        import tensorrt.plugin as trtp
    except ImportError as e:
        raise BackendError(f"IaP plugin: TensorRT with tensorrt.plugin (10.9+) is needed ({e})") from e

    @trtp.register(PLUGIN_ID)
    def iap_desc(
        e: trtp.TensorDesc,
        f: trtp.TensorDesc,
        weight: trtp.TensorDesc,
        bias: trtp.TensorDesc,
        upsample: int,
        channels: int,
        joints: int,
    ) -> trtp.TensorDesc:
        shape = f.shape_expr
        return trtp.from_shape_expr((shape[0], joints, shape[2], shape[3]), dtype=f.dtype)

    @trtp.autotune(PLUGIN_ID)
    def iap_autotune(e, f, weight, bias, upsample, channels, joints, outputs) -> list[trtp.AutoTuneCombination]:
        c = trtp.AutoTuneCombination()
        c.pos([0, 1, 2, 3, 4], "FP32|FP16")
        c.tactics(sorted(TACTICS))
        return [c]

    @trtp.aot_impl(PLUGIN_ID)
    def iap_aot(e, f, weight, bias, upsample, channels, joints, outputs, tactic):
        dtype = "fp32" if f.dtype == trt.float32 else "fp16"
        chosen = TACTICS.get(int(tactic), TACTICS[1])
        kernel = compile_iap_ptx(dtype, int(channels), bool(upsample), chosen)
        shape = f.shape_expr
        dims = launch_dims(shape[0], shape[2], shape[3], chosen, cdiv=trtp.cdiv)
        params = trtp.KernelLaunchParams()
        params.grid_x, params.grid_y = dims["grid_x"], dims["grid_y"]  # grid_z keeps its default, 1
        params.block_x = dims["block_x"]
        params.shared_mem = kernel.shared_mem
        extra = trtp.SymIntExprs.from_tuple(
            [trtp.SymInt32(v) for v in (int(joints), int(channels), shape[2], shape[3])]
        )
        return kernel.name.encode(), kernel.ptx.encode(), params, extra

    _registered = True
    log.info("registered TensorRT plugin %s (AOT Triton, tactics %s)", PLUGIN_ID, sorted(TACTICS))
