"""Compare stip_rt's networks with tensors stored from the official implementation.

Usage:
    python scripts/check_parity.py PREFIX [PREFIX ...] [--tol 1e-4]
        [--backend torch|onnxruntime|cuda-fast] [--device cpu|cuda] [--precision auto|fp32|fp16|bf16]

For each PREFIX it reads ``PREFIX.json`` (the configuration), ``PREFIX.state_dict.pt``
(the weights, loaded strictly) and ``PREFIX.io.npz`` (``input`` and every official
output, named ``<output>_<index>``), runs the model in eval mode, fp32, on the CPU,
and prints one line per output with its relative error: max |ours − official| divided
by max |official|. ``forward`` is the inference path (``model(x)``) against
``keypoint_0``. With ``--backend`` it also checks the network *as served*: the backend built by
:func:`stip_rt.runtime.factory.create_backend` (the prepared graph, BatchNorm folded; ONNX
export for ``onnxruntime``; FP16 + CUDA graphs for ``cuda-fast``) runs the stored input through
its ``infer`` and is compared with ``keypoint_0`` (row ``served:<backend>``) at a tolerance for its
precision (``--served-tol``; default 1e-4 for fp32 on the CPU, 5e-3 for fp32 on a GPU (TF32
convolutions), 2e-2 for fp16, 8e-2 for bf16). Exits 1 if any error exceeds its tolerance, 2 on
unreadable input or a backend that cannot run here.

Example:
    python scripts/check_parity.py ../shared/fixtures/official_parity/stipnet_c16_crowdpose14
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from stip_rt.errors import StipError
from stip_rt.models import build_model, flatten_outputs


def relative_errors(prefix: str | Path) -> list[tuple[str, tuple[int, ...], float, float]]:
    """(name, shape, max |ref|, relative error) for every stored output, plus ``forward``.

    Raises:
        StipError: a missing or invalid file.
    """
    prefix = str(prefix)
    model = build_model(prefix + ".json", weights=prefix + ".state_dict.pt").eval()
    npz_path = Path(prefix + ".io.npz")
    try:
        ref = dict(np.load(npz_path))
    except (OSError, ValueError) as e:
        raise StipError(f"parity fixture {npz_path}: cannot read ({e})") from None
    if "input" not in ref:
        raise StipError(f"parity fixture {npz_path}: no 'input' array")
    x = torch.from_numpy(ref.pop("input")).float()
    with torch.no_grad():
        ours = {k: v.numpy() for k, v in flatten_outputs(model.forward_train(x)).items()}
        ours["forward"] = model(x).numpy()
    ref["forward"] = ref.get("keypoint_0", np.zeros(0))
    rows = []
    for name, want in ref.items():
        got = ours.get(name)
        scale = float(np.abs(want).max()) if want.size else 0.0
        if got is None or got.shape != want.shape:
            rows.append((name, tuple(want.shape), scale, float("inf")))
            continue
        err = float(np.abs(got.astype(np.float64) - want).max()) / max(scale, 1e-30)
        rows.append((name, tuple(want.shape), scale, err))
    return rows


SERVED_TOL = {"fp16": 2e-2, "bf16": 8e-2}


def served_error(
    prefix: str | Path, backend: str, device: str = "auto", precision: str = "auto"
) -> tuple[str, str, str, float]:
    """The network as ``backend`` serves it on the stored input, against ``keypoint_0``.

    Returns:
        (description, precision, device, relative error) of the served backend.

    Raises:
        StipError: a missing or invalid file; BackendError: the backend cannot run here.
    """
    from stip_rt.runtime.factory import create_backend, describe_backend

    prefix = str(prefix)
    model = build_model(prefix + ".json", weights=prefix + ".state_dict.pt").eval()
    ref = dict(np.load(prefix + ".io.npz"))
    if device == "auto" and backend == "onnxruntime":
        device = "cpu"
    served = create_backend(model, backend=backend, device=device, precision=precision)
    out = served.infer(torch.from_numpy(ref["input"]).float()).float().cpu().numpy()
    want = ref["keypoint_0"]
    err = float("inf")
    if out.shape == want.shape:
        err = float(np.abs(out.astype(np.float64) - want).max()) / max(float(np.abs(want).max()), 1e-30)
    return describe_backend(served), served.precision, str(served.device), err


def served_tolerance(precision: str, device: str, tol: float) -> float:
    """Default tolerance of a served network: ``tol`` for fp32 on the CPU, 5e-3 for fp32 on a GPU
    (TF32 convolutions), 2e-2 for fp16, 8e-2 for bf16."""
    if precision in SERVED_TOL:
        return SERVED_TOL[precision]
    return tol if device == "cpu" else max(tol, 5e-3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefix", nargs="+", help="fixture prefix: PREFIX.json, PREFIX.state_dict.pt, PREFIX.io.npz")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest allowed relative error (default 1e-4)")
    ap.add_argument(
        "--backend",
        choices=("torch", "onnxruntime", "cuda-fast", "tensorrt"),
        default=None,
        help="also check the network as this backend serves it",
    )
    ap.add_argument("--device", default="auto", help="device of --backend (auto, cpu, cuda)")
    ap.add_argument("--precision", default="auto", help="precision of --backend (auto, fp32, fp16, bf16)")
    ap.add_argument(
        "--served-tol", type=float, default=None, help="tolerance of the served row (default: by precision)"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    failed = 0
    for prefix in args.prefix:
        try:
            rows = relative_errors(prefix)
            served = None
            if args.backend:
                served = served_error(prefix, args.backend, args.device, args.precision)
        except StipError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{prefix}")
        for name, shape, scale, err in rows:
            ok = err <= args.tol
            failed += not ok
            shape_s = "x".join(map(str, shape))
            print(f"  {name:<14} {shape_s:<14} max|ref| {scale:9.3e}  rel err {err:9.2e}  {'ok' if ok else 'FAIL'}")
        if served is not None:
            description, precision, device, err = served
            tol = args.served_tol if args.served_tol is not None else served_tolerance(precision, device, args.tol)
            ok = err <= tol
            failed += not ok
            verdict = "ok" if ok else "FAIL"
            print(f"  served:{args.backend:<8} rel err {err:9.2e} (tol {tol:g})  {verdict}  [{description}]")
    print(f"{'FAILED' if failed else 'passed'}: {failed} output(s) above tolerance {args.tol:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
