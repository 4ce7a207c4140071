"""The Triton IaP kernels against the reference, run from ``iap_triton_cases.py`` in a subprocess.

``TRITON_INTERPRET=1`` must be set before ``@triton.jit`` runs and changes every kernel of the
process, so the interpreted run gets its own interpreter instead of leaking into other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("iap_triton_cases.py")
REPO = Path(__file__).resolve().parents[2]


def _run_cases(device: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["STIP_RT_IAP_DEVICE"] = device
    if device == "cpu":
        env["TRITON_INTERPRET"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and " failed" not in res.stdout


def test_iap_triton_kernels_interpreted_on_cpu() -> None:
    pytest.importorskip("triton")
    _run_cases("cpu")


@pytest.mark.gpu
def test_iap_triton_kernels_on_cuda() -> None:
    pytest.importorskip("triton")
    _run_cases("cuda")
