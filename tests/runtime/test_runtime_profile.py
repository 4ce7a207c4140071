"""Op / kernel counting of one inference call (issue 13: batch-1 latency is a kernel count)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from stip_rt.models import build_model
from stip_rt.nn.fold import count_batchnorm, prepare_inference
from stip_rt.runtime.profile import (
    by_kind,
    count_aten_ops,
    count_cuda_kernels,
    cuda_kernel_times,
    kind_of,
    peak_bytes,
    summary_line,
    time_line,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_specs import TINY_STIP


def test_folding_removes_exactly_the_batchnorm_ops() -> None:
    torch.manual_seed(0)
    model = build_model(TINY_STIP).eval()
    x = torch.randn(1, 3, 64, 64)
    unfolded = by_kind(count_aten_ops(prepare_inference(model, fold=False), x))
    folded = by_kind(count_aten_ops(prepare_inference(model), x))
    n_bn = count_batchnorm(model)
    assert unfolded["batch_norm"] == n_bn > 0 and folded["batch_norm"] == 0
    assert sum(unfolded.values()) - sum(folded.values()) == n_bn
    assert folded["conv/matmul"] == unfolded["conv/matmul"] > 0 and folded["iap"] == 1


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("aten.convolution.default", "conv/matmul"),
        ("sm90_xmma_fprop_implicit_gemm_f16f16", "conv/matmul"),
        ("aten._native_batch_norm_legit_no_training.default", "batch_norm"),
        ("aten.upsample_bilinear2d.vec", "upsample"),
        ("aten.relu.default", "relu"),
        ("aten.add.Tensor", "add"),
        ("Memcpy DtoD (Device -> Device)", "copy"),
        ("triton_poi_fused_add_relu_3", "fused"),
        ("triton_poi_fused_5", "fused"),
        ("iap_fwd_kernel", "iap"),
        ("aten.sigmoid.default", "other"),
    ],
)
def test_kind_of(name: str, kind: str) -> None:
    assert kind_of(name) == kind


def test_summary_line() -> None:
    from collections import Counter

    line = summary_line("x", Counter({"aten.relu.default": 2, "aten.convolution.default": 3}))
    assert line == "x: 5 (conv/matmul 3, relu 2)"


def test_time_line_sums_kernel_times_by_kind() -> None:
    times = {"sm90_xmma_fprop_implicit_gemm": 5100.0, "vectorized_elementwise_kernel<add>": 700.0, "cudnn_conv": 40.0}
    assert time_line("b64", times) == "b64: 5.84 ms GPU (conv/matmul 5.14 ms, add 0.70 ms)"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_kernel_count_needs_a_gpu() -> None:
    with pytest.raises(RuntimeError, match="CUDA GPU"):
        count_cuda_kernels(lambda x: x, torch.zeros(1))
    with pytest.raises(RuntimeError, match="CUDA GPU"):
        cuda_kernel_times(lambda x: x, torch.zeros(1))


@pytest.mark.gpu
def test_cuda_replay_kernels_drop_with_folding() -> None:
    from stip_rt.runtime.config import CudaFastConfig
    from stip_rt.runtime.cuda_fast import CudaFastBackend

    torch.manual_seed(0)
    model = build_model(TINY_STIP).eval()
    x = torch.randn(1, 3, 64, 64, device="cuda")
    counts = {}
    for fold in (False, True):
        backend = CudaFastBackend(model, config=CudaFastConfig(fold_bn=fold, buckets=(1,)))
        counts[fold] = by_kind(count_cuda_kernels(backend.infer, x))
    assert counts[True]["batch_norm"] == 0 < counts[False]["batch_norm"]
    assert sum(counts[True].values()) < sum(counts[False].values())
    times = cuda_kernel_times(backend.infer, x)  # the folded replay's kernels, with their GPU time
    assert set(times) == set(count_cuda_kernels(backend.infer, x)) and sum(times.values()) > 0


def test_peak_bytes_counts_what_a_call_allocates_at_once_on_the_cpu() -> None:
    def two_live() -> None:
        a = torch.ones(1000, 1000)  # 4 MB
        b = a * 2  # 4 MB more while a lives
        del a, b

    def one_at_a_time() -> None:
        for _ in range(3):
            torch.ones(1000, 1000).sum()  # each freed before the next

    assert 8_000_000 <= peak_bytes(two_live, torch.device("cpu")) < 9_000_000
    assert 4_000_000 <= peak_bytes(one_at_a_time, torch.device("cpu")) < 5_000_000
