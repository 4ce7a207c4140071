#!/usr/bin/env python
"""Assemble what ``scripts/gpu_check.sh`` needs on a GPU machine that has no network and no ``../shared``.

Writes one folder (default ``.gpucarry``, git-ignored by ``.gitignore``) to be carried beside the
checkout:

* ``wheels/``: the packages the GPU machine lacks (STACK.md), as manylinux wheels for its Python, at
  the versions installed here where they are (``pip download --only-binary=:all: --no-deps``; needs
  the package index, so run it here);
* ``shared/``: the fixtures and data the checks read, copied from ``--shared``, with
  ``data/opencv_samples/vtest.avi`` remuxed (PyAV, no re-encoding) to its first ``--frames`` frames,
  because the whole file breaks the 64 MiB a device call may carry;
* ``run.sh``: runs ``gpu_check.sh`` with them, writes the console to ``$OUT/console.txt`` and the logs
  to ``$OUT/logs.tgz`` (only a few files come back from a device call), and prints the console's tail.

Then, on the GPU machine, from the repository root: ``bash .gpucarry/run.sh [gpu_check options]``.
It fails when the folder and the checkout's tracked files together exceed ``--limit-mib`` (what a
device call carries).

Usage: python scripts/gpu_carry.py [--shared ../shared] [--out .gpucarry] [--python-version 3.12]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]
WHEELS = (
    "av",
    "filterpy",
    "platformdirs",
    "jsonschema",
    "jsonschema-specifications",
    "referencing",
    "rpds-py",
    "pycocotools",
    "faster-coco-eval",
)
COPIED = (  # relative to the shared folder
    "fixtures/README.md",
    "fixtures/official_parity",
    "fixtures/official_decode",
    "fixtures/official_keys",
    "data/mot15/PETS09-S2L1/gt/gt.txt",
    "data/coco_val2017_keypoints",
)
VIDEO = "data/opencv_samples/vtest.avi"
RUN_SH = """#!/usr/bin/env bash
# one GPU run of scripts/gpu_check.sh with the carried wheels and data (made by scripts/gpu_carry.py)
export PYTHONUNBUFFERED=1
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-/tmp/gpu_carry_out}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > /tmp/gc_nvidia.txt 2>&1
cat /tmp/gc_nvidia.txt
bash scripts/gpu_check.sh --device cuda --wheels "$HERE/wheels" --shared "$HERE/shared" --out /tmp/gc "$@" \\
    > "$OUT/console.txt" 2>&1
rc=$?
cp /tmp/gc_nvidia.txt /tmp/gc/ 2>/dev/null
tar czf "$OUT/logs.tgz" -C /tmp/gc --exclude=site .
tail -c 11000 "$OUT/console.txt"
exit $rc
"""


def pinned(name: str) -> str:
    """``name==version`` of the installed package (the GPU run then uses what was tested here), else ``name``."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def cut_video(src: Path, dst: Path, frames: int) -> int:
    """Remux the first ``frames`` video packets of ``src`` into ``dst`` (no re-encoding); returns the count."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    kept = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        ostream = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:  # the demuxer's final flush packet
                continue
            packet.stream = ostream
            out.mux(packet)
            kept += 1
            if kept >= frames:
                break
    return kept


def folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def checkout_mib() -> float:
    """MiB of the repository's tracked files (they travel with every device call)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    paths = (REPO / name for name in listed.decode().split("\0") if name)
    return sum(p.stat().st_size for p in paths if p.is_file()) / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared fixtures/data folder")
    ap.add_argument("--out", type=Path, default=REPO / ".gpucarry")
    ap.add_argument("--python-version", default="3.12", help="the GPU machine's Python (STACK.md)")
    ap.add_argument("--platform", default="x86_64", help="the machine's architecture (manylinux wheels)")
    ap.add_argument("--frames", type=int, default=420, help="frames of vtest.avi to keep")
    ap.add_argument("--limit-mib", type=float, default=64.0, help="the most a device call carries, checkout included")
    ap.add_argument("--no-wheels", action="store_true", help="skip the download (wheels/ already there)")
    args = ap.parse_args(argv)
    missing = [p for p in (*COPIED, VIDEO) if not (args.shared / p).exists()]
    if missing:
        print(f"gpu_carry: {args.shared} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_wheels:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        pip += ["--python-version", args.python_version, "--implementation", "cp"]
        for tag in ("manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014"):  # pip matches tags exactly
            pip += ["--platform", f"{tag}_{args.platform}"]
        subprocess.run([*pip, "-d", str(args.out / "wheels"), *map(pinned, WHEELS)], check=True)
    for rel in COPIED:
        src, dst = args.shared / rel, args.out / "shared" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    kept = cut_video(args.shared / VIDEO, args.out / "shared" / VIDEO, args.frames)
    (args.out / "run.sh").write_text(RUN_SH)
    size, tree = folder_mib(args.out), checkout_mib()
    print(f"gpu_carry: {args.out} holds {size:.1f} MiB ({kept} frames of vtest.avi), the checkout {tree:.1f} MiB")
    if size + tree > args.limit_mib:
        print(f"gpu_carry: over the {args.limit_mib:g} MiB a call carries: cut --frames or drop data", file=sys.stderr)
        return 1
    print(f"then on the GPU machine: bash {args.out.name}/run.sh   (carry {args.out.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
