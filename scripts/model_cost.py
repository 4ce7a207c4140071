"""Parameters and multiply-accumulates (MACs) per person crop of the pose networks.

Usage:
    python scripts/model_cost.py [--models NAME ...] [--update-doc docs/models.md]

MACs are measured with ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2;
it counts convolutions, linear layers and matrix products, not element-wise ops,
pooling or interpolation) on one crop at the model's input size, in eval mode:

* ``official``: ``forward_train`` — everything the official ``forward`` computes (the
  IaP kernels generated at heatmap resolution and materialised);
* ``inference``: ``model(x)`` — the pruned path, with the IaP op in its reference
  form (embeddings upsampled, then the generator at heatmap resolution);
* ``inference, fused IaP``: the same path with the fused op's arithmetic instead:
  the generator at backbone resolution, K·C·C·h·w, plus the per-pixel product K·C·H·W
  (the bilinear upsample of the generated kernels is not counted, like all interpolation).

With ``--update-doc`` the markdown table replaces the block between
``<!-- model-cost:start -->`` and ``<!-- model-cost:end -->`` in that file.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from stip_rt.models import build_model
from stip_rt.nn.config import PoseResNetConfig, StipConfig
from stip_rt.nn.iap import use_iap_impl

DEFAULT = [
    "hrnet-w32-crowdpose-256x192",
    "hrnet-w32-coco-256x192",
    "stip-w32-crowdpose-256x192",
    "stip-w32-coco-256x192",
]
START, END = "<!-- model-cost:start -->", "<!-- model-cost:end -->"


def _macs(fn: Callable[[torch.Tensor], object], x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(x)
    return counter.get_total_flops() // 2


def measure(name: str) -> dict[str, Any]:
    """Parameters and MACs of one zoo model, batch 1."""
    model = build_model(name).eval()
    spec = model.spec
    row: dict[str, Any] = {"name": name, "arch": spec.arch, "K": spec.num_joints}
    backbone = spec.net.hrnet if isinstance(spec.net, StipConfig) else spec.net
    row.update(C=None if isinstance(backbone, PoseResNetConfig) else backbone.widths[0], size=spec.input_size)
    # Shapes only: on the meta device nothing is computed, the counts are the same.
    model = model.to("meta")
    x = torch.empty(1, 3, *spec.input_size, device="meta")
    row["params"] = sum(p.numel() for p in model.parameters())
    row["official"] = _macs(model.forward_train, x)
    if spec.arch != "stip":
        row["inference"] = row["fused"] = _macs(model, x)
        return row
    with use_iap_impl("reference"):
        row["inference"] = _macs(model, x)
    assert isinstance(spec.net, StipConfig)
    k, c = spec.num_joints, spec.net.hrnet.widths[0]
    hh, ww = spec.heatmap_size
    h, w = hh // spec.net.up_scale, ww // spec.net.up_scale
    generator_full = k * c * c * hh * ww
    row["fused"] = row["inference"] - generator_full + k * c * c * h * w + k * c * hh * ww
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table; the last column compares a STIP row with the HRNet row of the same K, width and size."""
    base = {(r["K"], r["C"], r["size"]): r["official"] for r in rows if r["arch"] == "hrnet"}
    lines = [
        "| model | K | params | GMACs official (`forward_train`) | GMACs inference (reference IaP) "
        "| GMACs inference (fused IaP) | fused vs HRNet (same width, K, size) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = base.get((r["K"], r["C"], r["size"]))
        rel = f"{100 * (r['fused'] / ref - 1):+.1f} %" if ref and r["arch"] == "stip" else "—"
        lines.append(
            f"| {r['name']} | {r['K']} | {r['params']:,} | {r['official'] / 1e9:.3f} | {r['inference'] / 1e9:.3f} "
            f"| {r['fused'] / 1e9:.3f} | {rel} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT, help="zoo names (default: W32 HRNet and STIP, K=14/17)")
    ap.add_argument("--update-doc", type=Path, help=f"markdown file with {START} ... {END} to rewrite")
    args = ap.parse_args(argv)
    rows = [measure(n) for n in args.models]
    md = table(rows)
    print(f"torch {torch.__version__}, batch 1, one crop at the model's input size")
    print(md)
    if args.update_doc:
        text = args.update_doc.read_text(encoding="utf-8")
        block = f"{START}\n{md}\n{END}"
        new, count = re.subn(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
        if count != 1:
            print(f"error: {args.update_doc}: expected one {START} ... {END} block", file=sys.stderr)
            return 2
        args.update_doc.write_text(new, encoding="utf-8")
        print(f"updated {args.update_doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
