"""Compare stip-rt's post-processing with the official code's numbers.

Usage::

    python scripts/check_decode.py DIR [--device cpu|cuda]    # e.g. ../shared/fixtures/official_decode

DIR holds files in the ``official_decode`` format (see its README): ``decode_hrnet.npz``,
``decode_stip.npz``, ``flip.npz``, ``targets.npz``, ``oks_nms.json``. Missing files are skipped
(at least one must be there). Prints one line per check with its worst error and exits 1 if a
check fails, 2 if DIR holds none of the files.

The decode, flip average and rescoring run as the library runs them: torch ops on ``--device``
(the heatmaps are uploaded there; only the results come back).

Tolerances are the fixture README's: exact for argmax, maxvals, HRNet heatmap coordinates,
flip averages, targets and NMS keep lists; 1e-4 px for image coordinates; 1e-5 heatmap px for
STIP refined coordinates (the torch decode: 5e-6, from its correctly rounded float32 log where
numpy's float32 log is off by one ulp in ~20 % of values); 1e-7 relative for rescored scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stip_rt.data.targets import generate_target
from stip_rt.pose.crops import affine_matrices, apply_affine
from stip_rt.pose.decode import decode_heatmaps
from stip_rt.pose.flip import flip_average
from stip_rt.pose.postprocess import oks_matrix, oks_nms, rescore
from stip_rt.schemas import COCO17, CROWDPOSE14, schema_for_joints


@dataclass(frozen=True)
class Check:
    """One comparison: its name, the worst error found and the tolerance."""

    name: str
    error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.error <= self.tolerance)


def _err(a: np.ndarray, b: np.ndarray) -> float:
    """Worst absolute difference; NaN in both at the same place counts as equal, elsewhere as inf."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    na, nb = np.isnan(a), np.isnan(b)
    if np.any(na != nb):
        return float("inf")
    d = np.abs(a - b)[~na]
    return float(d.max()) if d.size else 0.0


def _decode_checks(path: Path, kind: str, device: str) -> Iterator[Check]:
    z = np.load(path)
    hm, center, scale = z["heatmaps"], z["center"], z["scale"]
    k, h, w = hm.shape[-3:]
    hm = hm.reshape(-1, k, h, w)
    center, scale = center.reshape(-1, 2), scale.reshape(-1, 2)
    dec = decode_heatmaps(torch.from_numpy(hm).to(device), center, scale, kind).cpu()
    coords, maxvals, hm_coords, arg = (t.numpy() for t in (dec.coords, dec.maxvals, dec.hm_coords, dec.argmax))
    tag = path.stem
    yield Check(f"{tag}: argmax_coords", _err(arg, z["argmax_coords"].reshape(arg.shape)), 0.0)
    yield Check(f"{tag}: maxvals", _err(maxvals, z["maxvals"].reshape(maxvals.shape)), 0.0)
    hm_tol = 0.0 if kind == "hrnet" else 1e-5
    yield Check(f"{tag}: hm_coords (heatmap px)", _err(hm_coords, z["hm_coords"].reshape(hm_coords.shape)), hm_tol)
    if "refine_offsets" in z:
        off = hm_coords - arg
        yield Check(f"{tag}: refine_offsets", _err(off, z["refine_offsets"].reshape(off.shape)), 1e-5)
    ref = z["coords"].reshape(coords.shape)
    yield Check(f"{tag}: coords (image px)", _err(coords, ref), 1e-4)
    # the crop affine alone: the official heatmap coordinates mapped with our inverse matrices
    mapped = apply_affine(z["hm_coords"].reshape(hm_coords.shape), affine_matrices(center, scale, (w, h), inverse=True))
    if kind == "hrnet":
        mapped = mapped.astype(np.float32)
    yield Check(f"{tag}: affine (official hm_coords → image px)", _err(mapped, ref), 1e-4)


def _flip_checks(path: Path, device: str) -> Iterator[Check]:
    z = np.load(path)
    prefixes = sorted({key[: key.index("_") + 1] for key in z.files if key.endswith("_output")})
    for p in prefixes:
        out, flipped = (torch.from_numpy(z[p + s]).to(device) for s in ("output", "output_flipped"))
        schema = {"coco17_": COCO17, "crowdpose14_": CROWDPOSE14}.get(p) or schema_for_joints(out.shape[1])
        kind = "hrnet" if out.shape[-2:] == (64, 48) or p.startswith("coco17") else "stip"
        avg = flip_average(out, flipped, schema.flip_index())
        yield Check(f"flip {p[:-1]}: averaged", _err(avg.cpu().numpy(), z[p + "averaged"]), 0.0)
        dec = decode_heatmaps(avg, z[p + "center"], z[p + "scale"], kind).cpu()
        preds = z[p + "preds"]
        yield Check(f"flip {p[:-1]}: preds x, y (image px)", _err(dec.coords.numpy(), preds[..., :2]), 1e-4)
        yield Check(f"flip {p[:-1]}: preds maxval", _err(dec.maxvals.numpy(), preds[..., 2]), 0.0)


def _target_checks(path: Path, device: str) -> Iterator[Check]:
    z = np.load(path)
    for tag, hm_size, sigma in (("stip", (96, 128), 3), ("hrnet", (48, 64), 2)):
        if f"target_{tag}" not in z:
            continue
        target, weight = generate_target(z["joints"], z["joints_vis"], (192, 256), hm_size, sigma)
        yield Check(f"targets {tag}: target", _err(target, z[f"target_{tag}"]), 0.0)
        yield Check(f"targets {tag}: target_weight", _err(weight, z[f"target_weight_{tag}"]), 0.0)


def _nms_checks(path: Path, device: str) -> Iterator[Check]:
    data = json.loads(path.read_text())
    for ds, block in data.items():
        if not isinstance(block, dict) or "images" not in block:
            continue
        sigmas = np.asarray(block["sigmas"], np.float64)
        e_score = e_keep = e_oks = 0.0
        for im in block["images"]:
            people = im["persons"]
            kps = np.asarray([p["keypoints"] for p in people], np.float32)
            areas = np.asarray([p["area"] for p in people], np.float32)
            box = np.asarray([p["box_score"] for p in people], np.float64)
            ref = np.asarray([p["rescored"] for p in people], np.float64)
            kp_scores = torch.from_numpy(kps[..., 2]).to(device)
            score = rescore(box, kp_scores, block["in_vis_thre"]).cpu().numpy()
            e_score = max(e_score, float(np.max(np.abs(score - ref) / np.maximum(np.abs(ref), 1e-12))))
            keep = oks_nms(kps, score, areas, sigmas, block["oks_thre"])
            e_keep = max(e_keep, 0.0 if keep.tolist() == list(im["keep"]) else float("inf"))
            e_oks = max(e_oks, _err(oks_matrix(kps, areas, sigmas), np.asarray(im["oks"])))
        yield Check(f"oks_nms {ds}: rescored (relative)", e_score, 1e-7)
        yield Check(f"oks_nms {ds}: oks", e_oks, 1e-12)
        yield Check(f"oks_nms {ds}: keep", e_keep, 0.0)


CHECKS: dict[str, Callable[[Path, str], Iterator[Check]]] = {
    "decode_hrnet.npz": lambda p, d: _decode_checks(p, "hrnet", d),
    "decode_stip.npz": lambda p, d: _decode_checks(p, "stip", d),
    "flip.npz": _flip_checks,
    "targets.npz": _target_checks,
    "oks_nms.json": _nms_checks,
}


def run_checks(folder: str | Path, device: str = "cpu") -> list[Check]:
    """Every comparison for the files present in ``folder``, decoding on ``device``."""
    folder = Path(folder)
    out: list[Check] = []
    for name, fn in CHECKS.items():
        if (folder / name).is_file():
            out.extend(fn(folder / name, device))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder in the official_decode format")
    parser.add_argument("--device", default="cpu", help="where the decode runs: cpu (default), cuda, cuda:N")
    args = parser.parse_args(argv)
    checks = run_checks(args.folder, args.device)
    if not checks:
        print(f"{args.folder}: none of {', '.join(CHECKS)} found", file=sys.stderr)
        return 2
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<{width}}  worst {c.error:.3g}  (tolerance {c.tolerance:g})")
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed}/{len(checks)} checks passed (device {args.device})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
