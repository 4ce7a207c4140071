"""``stip-rt info``: versions, devices and which backends are usable here."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_info() -> dict:
    """Versions of the optional stacks, CUDA devices and usable backends."""
    import torch

    from ..runtime.registry import backend_availability

    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append({"index": i, "name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                            "capability": f"{p.major}.{p.minor}"})
    packages = {
        name: _version(dist)
        for name, dist in [("stip-rt", "stip-rt"), ("torch", "torch"), ("onnxruntime", "onnxruntime"),
                           ("onnxruntime-gpu", "onnxruntime-gpu"), ("onnx", "onnx"), ("tensorrt", "tensorrt"),
                           ("triton", "triton"), ("opencv", "opencv-python-headless"), ("av", "av"),
                           ("numpy", "numpy"), ("pyqt6", "PyQt6")]
    }
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "cuda": {"available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda, "devices": devices},
        "backends": backend_availability(),
    }


def run(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"python      {info['python']} ({info['platform']})")
    for name, v in info["packages"].items():
        print(f"{name:<16}{v or '-'}")
    cuda = info["cuda"]
    if cuda["devices"]:
        for d in cuda["devices"]:
            print(f"cuda:{d['index']:<11}{d['name']} ({d['memory_gb']} GiB, sm_{d['capability'].replace('.', '')})")
    else:
        print("cuda            no CUDA device")
    print("backends:")
    for name, (ok, why) in info["backends"].items():
        print(f"  {name:<14}{'yes' if ok else 'no'}  {why}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="versions, devices and usable backends")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run)
