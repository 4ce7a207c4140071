"""Fast CUDA path: bucket arithmetic on any machine; FP16 + graphs vs fp32 eager on a GPU."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from stip_rt.errors import BackendError
from stip_rt.runtime.config import DEFAULT_BUCKETS, CudaFastConfig
from stip_rt.runtime.cuda_fast import CudaFastBackend, bucket_for, cudnn_benchmarking, on_fresh_thread, split_batch

FP16_TOL = 2e-2  # of the fp32 output's max-abs (docs/backends.md)


@pytest.mark.parametrize(("n", "bucket"), [(1, 1), (2, 2), (3, 4), (7, 8), (8, 8), (9, 16), (33, 64), (64, 64)])
def test_bucket_for(n: int, bucket: int) -> None:
    assert bucket_for(n, DEFAULT_BUCKETS) == bucket


def test_bucket_for_too_large() -> None:
    with pytest.raises(ValueError, match="65"):
        bucket_for(65, DEFAULT_BUCKETS)


@pytest.mark.parametrize(
    ("n", "chunks"),
    [
        (0, []),
        (1, [(0, 1, 1)]),
        (7, [(0, 7, 8)]),
        (64, [(0, 64, 64)]),
        (65, [(0, 64, 64), (64, 65, 1)]),
        (150, [(0, 64, 64), (64, 128, 64), (128, 150, 32)]),
    ],
)
def test_split_batch(n: int, chunks: list) -> None:
    assert split_batch(n, DEFAULT_BUCKETS) == chunks
    assert sum(stop - start for start, stop, _ in chunks) == n
    assert all(stop - start <= b for start, stop, b in chunks)


@pytest.mark.parametrize("before", [False, True])
def test_cudnn_benchmarking_keeps_the_flag_on_until_the_last_thread_leaves(before: bool, monkeypatch) -> None:
    import threading

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", before)
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with cudnn_benchmarking():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    with cudnn_benchmarking():
        assert torch.backends.cudnn.benchmark
        t.start()
        assert inside.wait(10)
    assert torch.backends.cudnn.benchmark  # the other thread is still inside
    leave.set()
    t.join(10)
    assert torch.backends.cudnn.benchmark is before
    with pytest.raises(RuntimeError, match="boom"), cudnn_benchmarking():
        raise RuntimeError("boom")
    assert torch.backends.cudnn.benchmark is before


def test_on_fresh_thread_returns_or_raises_what_the_thread_did() -> None:
    import threading

    me = threading.get_ident()
    assert on_fresh_thread(threading.get_ident) != me
    with pytest.raises(KeyError, match="lost"):
        on_fresh_thread(lambda: {}["lost"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_the_warm_up_leaves_out_a_bucket_the_gpu_has_no_memory_for(monkeypatch, caplog) -> None:
    """A small GPU without memory for the largest graphs still starts: those buckets are left out
    (tried again when a batch needs them), the others are captured. No GPU needed: the captures are faked."""
    backend = CudaFastBackend.__new__(CudaFastBackend)  # no model, no GPU: only warmup() runs
    backend.config, backend._input_chw = CudaFastConfig(), (3, 64, 48)
    captured = []

    def graph(bucket: int, chw: tuple[int, ...]) -> None:
        if bucket >= 32:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        captured.append((bucket, chw))

    monkeypatch.setattr(backend, "_graph", graph)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    with caplog.at_level("WARNING"):
        backend.warmup()
    assert captured == [(b, (3, 64, 48)) for b in (16, 8, 4, 2, 1)]
    assert [r.getMessage().split(" at ")[0] for r in caplog.records] == [
        "cuda-fast: no GPU memory to capture the batch-64 graph",
        "cuda-fast: no GPU memory to capture the batch-32 graph",
    ]


def test_needs_a_gpu() -> None:
    with pytest.raises(BackendError, match=r"cuda-fast.*needs a CUDA GPU"):
        CudaFastBackend(torch.nn.Identity(), device="cuda")


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_compile_modes_with_their_own_graphs_are_refused(mode: str) -> None:
    with pytest.raises(BackendError, match="inductor's own CUDA graphs"):
        CudaFastBackend(torch.nn.Identity(), device="cuda", config=CudaFastConfig(compile=True, compile_mode=mode))


def _model():
    from stip_rt.models import build_model

    torch.manual_seed(0)
    return build_model("stip-w32-coco-256x192").eval()


@pytest.mark.gpu
@pytest.mark.parametrize(("precision", "cudnn"), [("fp16", True), ("bf16", True), ("fp16", False)])
def test_graphs_match_fp32_eager(precision: str, cudnn: bool) -> None:
    model = _model()
    ref_model = model.to("cuda").float()
    config = CudaFastConfig(precision=precision, cudnn_fusion=cudnn)
    backend = CudaFastBackend(model, device="cuda", config=config)
    tol = FP16_TOL if precision == "fp16" else 4 * FP16_TOL
    for n in (1, 7, 64):
        x = torch.randn(n, 3, 256, 192, device="cuda")
        with torch.inference_mode():
            ref = ref_model(x)
        out = backend.infer(x)
        assert out.dtype == torch.float32 and out.shape == ref.shape == (n, 17, 128, 96)
        err = ((out - ref).abs().max() / ref.abs().max()).item()
        assert err < tol, (n, err)
        again = backend.infer(x)  # a replay gives the same numbers, and earlier outputs are not overwritten
        assert torch.equal(out, again)
    assert set(backend._graphs) == {(1, (3, 256, 192)), (8, (3, 256, 192)), (64, (3, 256, 192))}


@pytest.mark.gpu
def test_eager_mode_without_graphs_and_empty_batch() -> None:
    backend = CudaFastBackend(_model(), config=CudaFastConfig(cuda_graphs=False, channels_last=False))
    assert backend.infer(torch.zeros(0, 3, 256, 192)).shape == (0, 17, 128, 96)
    assert backend.infer(torch.randn(3, 3, 256, 192)).shape == (3, 17, 128, 96)
    assert "cuda-fast" in backend.describe()


def _tiny_stip():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from tiny_specs import TINY_STIP

    from stip_rt.models import build_model

    torch.manual_seed(0)
    return build_model(TINY_STIP).eval()


@pytest.mark.gpu
def test_one_graph_per_input_size_and_reused_output() -> None:
    from stip_rt.nn.fold import count_batchnorm

    model = _tiny_stip()
    backend = CudaFastBackend(model, config=CudaFastConfig(precision="fp32", buckets=(1, 4), reuse_output=True))
    assert count_batchnorm(backend.model) == 0 and "BatchNorm folded" in backend.describe()
    ref = model.to("cuda")
    for size in ((64, 64), (96, 64)):
        x = torch.randn(3, 3, *size, device="cuda")
        out = backend.infer(x)
        with torch.inference_mode():
            want = ref(x)
        assert ((out - want).abs().max() / want.abs().max()).item() < 5e-3
        assert out.data_ptr() == backend._graphs[(4, (3, *size))].y.data_ptr()  # a view, no copy
    assert set(backend._graphs) == {(4, (3, 64, 64)), (4, (3, 96, 64))}


@pytest.mark.gpu
@pytest.mark.parametrize("graphs", [True, False])
def test_cudnn_benchmark_serves_the_network_and_restores_the_flag(graphs: bool, monkeypatch) -> None:
    """Engines chosen by timing (each bucket warmed and captured on a thread of its own) give the
    network's output, and the process-wide flag is as it was afterwards."""
    from stip_rt.runtime import cuda_fast

    fresh = []
    real = cuda_fast.on_fresh_thread
    monkeypatch.setattr(cuda_fast, "on_fresh_thread", lambda fn, **kw: fresh.append(1) or real(fn, **kw))
    before = torch.backends.cudnn.benchmark
    model = _tiny_stip()
    backend = CudaFastBackend(model, config=CudaFastConfig(cuda_graphs=graphs, buckets=(1, 8), cudnn_benchmark=True))
    assert "cudnn.benchmark" in backend.describe()
    ref = model.to("cuda")
    for n in (1, 7, 13):  # 13: two chunks
        x = torch.randn(n, 3, 64, 64, device="cuda")
        out = backend.infer(x)
        with torch.inference_mode():
            want = ref(x)
        assert ((out - want).abs().max() / want.abs().max()).item() < FP16_TOL, n
    assert torch.backends.cudnn.benchmark is before
    assert len(fresh) == (2 if graphs else 0)  # one capture thread per bucket; eager warms on the caller's


@pytest.mark.gpu
def test_chunks_replaying_one_graph_keep_their_outputs() -> None:
    model = _tiny_stip()
    backend = CudaFastBackend(model, config=CudaFastConfig(precision="fp32", buckets=(1, 2)))
    x = torch.randn(5, 3, 64, 64, device="cuda")  # chunks 2 + 2 + 1: the batch-2 graph replays twice
    out = backend.infer(x)
    with torch.inference_mode():
        want = model.to("cuda")(x)
    assert ((out - want).abs().max() / want.abs().max()).item() < 5e-3


@pytest.mark.gpu
def test_compiled_graph_matches_eager() -> None:
    model = _tiny_stip()
    cfg = CudaFastConfig(precision="fp16", buckets=(2,), compile=True, compile_mode="default", warmup=2)
    backend = CudaFastBackend(model, config=cfg)
    x = torch.randn(2, 3, 64, 64, device="cuda")
    with torch.inference_mode():
        want = model.to("cuda")(x)
    out = backend.infer(x)
    assert ((out - want).abs().max() / want.abs().max()).item() < FP16_TOL


@pytest.mark.gpu
@pytest.mark.parametrize("graphs", [True, False])
def test_parallel_branches_give_the_serial_result(graphs: bool) -> None:
    """HRNet's branches on CUDA streams of their own (captured into one graph, or eager) compute what
    the serial backend computes: the same kernels, only their order on the GPU differs."""
    from stip_rt.nn.parallel import ParallelBranches

    model = _tiny_stip()  # HRNet modules of 2, 3 and 4 branches, cheap to capture
    config = CudaFastConfig(cuda_graphs=graphs, buckets=(1, 2, 8))
    serial = CudaFastBackend(model, config=config)
    parallel = CudaFastBackend(model, config=dataclasses.replace(config, parallel_branches=True))
    assert "parallel CUDA streams" in parallel.describe() and "parallel" not in serial.describe()
    assert sum(m.parallel for m in parallel.model.modules() if isinstance(m, ParallelBranches)) == 3
    for n in (1, 7, 13):  # 13: two chunks, the batch-8 graph replayed twice
        x = torch.randn(n, 3, 64, 64, device="cuda")
        want, got = serial.infer(x), parallel.infer(x)
        err = ((got - want).abs().max() / want.abs().max()).item()
        assert err < 1e-3, (n, err)  # the same cuDNN heuristics give the same kernels: expected 0
