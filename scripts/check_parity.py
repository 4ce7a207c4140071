"""Compare stip_rt's networks with tensors stored from the official implementation.

Usage:
    python scripts/check_parity.py PREFIX [PREFIX ...] [--tol 1e-4]

For each PREFIX it reads ``PREFIX.json`` (the configuration), ``PREFIX.state_dict.pt``
(the weights, loaded strictly) and ``PREFIX.io.npz`` (``input`` and every official
output, named ``<output>_<index>``), runs the model in eval mode, fp32, on the CPU,
and prints one line per output with its relative error: max |ours − official| divided
by max |official|. ``forward`` is the inference path (``model(x)``) against
``keypoint_0``. Exits 1 if any error exceeds the tolerance, 2 on unreadable input.

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefix", nargs="+", help="fixture prefix: PREFIX.json, PREFIX.state_dict.pt, PREFIX.io.npz")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest allowed relative error (default 1e-4)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    failed = 0
    for prefix in args.prefix:
        try:
            rows = relative_errors(prefix)
        except StipError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{prefix}")
        for name, shape, scale, err in rows:
            ok = err <= args.tol
            failed += not ok
            shape_s = "x".join(map(str, shape))
            print(f"  {name:<14} {shape_s:<14} max|ref| {scale:9.3e}  rel err {err:9.2e}  {'ok' if ok else 'FAIL'}")
    print(f"{'FAILED' if failed else 'passed'}: {failed} output(s) above tolerance {args.tol:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
