"""``stip-rt info``: what a bug report needs: versions, the machine, devices, usable backends and
where stip-rt keeps its cache (with the ``STIP_RT_*`` variables that are set)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

#: Variables that change what stip-rt does; ``info`` shows those that are set.
_ENV_PREFIXES = ("STIP_RT_", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "TRITON_INTERPRET")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu() -> str:
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count() or '?'} logical cores"


def collect_info() -> dict:
    """Versions of the optional stacks, the machine, CUDA devices, usable backends, cache folders and
    the ``STIP_RT_*`` (and CUDA/thread) environment variables that are set."""
    import torch

    from .. import __file__ as package_file
    from ..paths import cache_root
    from ..runtime.engine_cache import engine_cache_dir, onnx_cache_dir
    from ..runtime.registry import backend_availability
    from ..weights import weights_dir

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
                           ("triton", "triton"), ("opencv", "opencv-python-headless"),
                           ("opencv-gui", "opencv-python"), ("av", "av"), ("numpy", "numpy"), ("pyqt6", "PyQt6")]
    }
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "cpu": _cpu(),
        "stip_rt_path": str(Path(package_file).parent),
        "packages": packages,
        "cuda": {"available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda, "devices": devices},
        "backends": backend_availability(),
        "cache": {"root": str(cache_root()), "weights": str(weights_dir()), "onnx": str(onnx_cache_dir()),
                  "engines": str(engine_cache_dir())},
        "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENV_PREFIXES)},
    }


def run(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{'python':<16}{info['python']} ({info['python_executable']})")
    print(f"{'platform':<16}{info['platform']}")
    print(f"{'cpu':<16}{info['cpu']}")
    for name, v in info["packages"].items():
        print(f"{name:<16}{v or '-'}" + (f" ({info['stip_rt_path']})" if name == "stip-rt" else ""))
    cuda = info["cuda"]
    build = f"torch built for CUDA {cuda['torch_cuda']}" if cuda["torch_cuda"] else "CPU-only torch build"
    if cuda["devices"]:
        for d in cuda["devices"]:
            print(f"cuda:{d['index']:<11}{d['name']} ({d['memory_gb']} GiB, sm_{d['capability'].replace('.', '')})")
        print(f"{'':<16}{build}")
    else:
        print(f"{'cuda':<16}no CUDA device ({build})")
    print("backends:")
    for name, (ok, why) in info["backends"].items():
        print(f"  {name:<14}{'yes' if ok else 'no':<5}{why}")
    print(f"{'cache':<16}{info['cache']['root']} (weights/, onnx/, engines/)")
    env = info["environment"]
    print("environment:" + ("" if env else " no STIP_RT_* variables set"))
    for k, v in env.items():
        print(f"  {k}={v}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="versions, machine, devices, usable backends and cache folder (paste it into a bug report)",
        description="Print what a bug report needs: Python, OS, CPU, package versions, CUDA devices, which "
        "backends work here (and why not), the cache folder and the STIP_RT_* variables that are set.",
    )
    p.add_argument("--json", action="store_true", help="print as JSON (the same fields)")
    p.set_defaults(func=run)
