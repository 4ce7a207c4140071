"""``stip-rt export`` and ``stip-rt bench`` end to end (tiny models), and their errors."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import onnx
import pytest
import torch
import yaml

from stip_rt.cli import main

TINY = {
    "name": "tiny-stip",
    "arch": "stip",
    "schema": "crowdpose14",
    "num_joints": 14,
    "input_size": [128, 96],
    "heatmap_size": [64, 48],
    "widths": [8, 16, 32, 64],
    "num_modules": [1, 1, 1],
    "num_blocks": 1,
    "stem_blocks": 1,
}


@pytest.fixture()
def tiny_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_export_plugin_onnx(tiny_yaml, tmp_path, capsys) -> None:
    out = tmp_path / "tiny.plugin.onnx"
    assert (
        main(["export", "--model", str(tiny_yaml), "--format", "onnx", "--flavour", "plugin", "--out", str(out)]) == 0
    )
    assert f"wrote {out}" in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert [n.op_type for n in proto.graph.node if n.domain == "stip_rt"] == ["IaP"]


def test_export_weights_that_do_not_match(tiny_yaml, tmp_path, fixtures_dir, capsys) -> None:
    weights = fixtures_dir / "official_parity" / "hrnet_c16_coco17.state_dict.pt"
    code = main(["export", "--model", str(tiny_yaml), "--weights", str(weights), "--out", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "hrnet_c16_coco17.state_dict.pt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_export_engine_without_tensorrt(tiny_yaml, tmp_path, capsys) -> None:
    code = main(["export", "--model", str(tiny_yaml), "--format", "engine", "--out", str(tmp_path / "x.engine")])
    assert code == 2 and "TensorRT is not installed" in capsys.readouterr().err


def test_bench_measures_skips_and_prints_ratios(tiny_yaml, capsys) -> None:
    code = main(
        [
            "bench",
            "--model",
            str(tiny_yaml),
            "--backends",
            "torch,onnxruntime,tensorrt,cuda-fast",
            "--batch",
            "1,2",
            "--seconds",
            "0.05",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "torch        batch   1:" in out and "onnxruntime  batch   2:" in out
    assert "ratio onnxruntime/torch batch 1:" in out and "ratio onnxruntime/torch batch 2:" in out
    if importlib.util.find_spec("tensorrt") is None:
        assert "tensorrt     skipped: backend 'tensorrt'" in out


def test_bench_variants_models_and_ratio_lines(tiny_yaml, tmp_path, capsys) -> None:
    other = tmp_path / "tiny-hrnet.yaml"
    other.write_text(yaml.safe_dump({**TINY, "name": "tiny-hrnet", "arch": "hrnet", "heatmap_size": [32, 24]}))
    backends = "torch,torch+unfolded,cuda-fast+compile,cuda-fast+unfused"
    argv = ["bench", "--model", f"{tiny_yaml},{other}", "--backends", backends]
    assert main([*argv, "--batch", "2", "--seconds", "0.05", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "torch+unfolded    batch   2:" in out and "(BatchNorm unfolded)" in out
    assert "cuda-fast+compile skipped:" in out and re.search(r"cuda-fast\+unfused +skipped: .*needs an NVIDIA GPU", out)
    assert "ratio folded/unfolded torch batch 2: " in out and "[tiny-stip]" in out and "[tiny-hrnet]" in out
    assert "ratio torch+unfolded/torch batch 2: " in out
    assert "time tiny-stip/tiny-hrnet torch batch 2: " in out
    assert "time tiny-stip/tiny-hrnet torch+unfolded batch 2: " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backends", "torch+fast"], "unknown option(s) ['fast']"),
        (["--backends", "torch,onnxrt"], "unknown backend 'onnxrt' (did you mean 'onnxruntime'?)"),
        (["--batch", "1,x"], "--batch '1,x'"),
        (["--batch", "0"], "positive"),
        (["--backends", ","], "--backends ',': expected at least one backend"),
        (["--threads", "-1"], "--threads -1"),
        (["--ort-threads", "-1"], "--ort-threads -1"),
        (["--seconds", "-1"], "--seconds -1"),
        (["--seconds", "0"], "--seconds 0"),
        (["--seconds", "nan"], "--seconds nan"),
        (["--device", "gpu0"], "--device 'gpu0'"),
        (["--weights", "nowhere.pth"], "nowhere.pth: file not found"),
    ],
)
def test_bench_bad_arguments(tiny_yaml, capsys, argv: list[str], message: str) -> None:
    assert main(["bench", "--model", str(tiny_yaml), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bench_random_weights(tiny_yaml, capsys) -> None:
    argv = ["bench", "--model", str(tiny_yaml), "--backends", "torch", "--batch", "1", "--seconds", "0.01"]
    assert main([*argv, "--weights", "random"]) == 0
    assert "torch        batch   1:" in capsys.readouterr().out


@pytest.mark.parametrize("opset", ["13", "17", "99"])
def test_export_refuses_an_opset_it_cannot_write(tiny_yaml, tmp_path, capsys, opset: str) -> None:
    out = tmp_path / "x.onnx"
    assert main(["export", "--model", str(tiny_yaml), "--opset", opset, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--opset {opset}" in err and "18" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_export_onnx_refuses_an_opset_it_cannot_write(tmp_path) -> None:
    from stip_rt.errors import BackendError
    from stip_rt.runtime.onnx_export import ExportConfig, export_onnx

    with pytest.raises(BackendError, match="opset 13"):
        export_onnx(torch.nn.Conv2d(3, 3, 1), tmp_path / "x.onnx", ExportConfig(opset=13), input_size=(8, 8))
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("cached", ["corrupt", "missing"])
def test_export_of_a_zoo_model_with_a_corrupt_or_missing_cached_checkpoint(
    tiny_yaml, tmp_path, monkeypatch, caplog, capsys, cached: str
) -> None:
    from stip_rt import weights
    from stip_rt.runtime import onnx_export

    exported: list[object] = []
    def fake_export(model, path, config):
        exported.append(path)
        path.write_bytes(b"onnx")
        return path

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    name = "hrnet-w32-coco-256x192"
    if cached == "corrupt":
        weights.weights_dir().mkdir(parents=True)
        (weights.weights_dir() / weights.get_entry(name).file).write_bytes(b"truncated download")
    code = main(["export", "--model", name, "--out", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    if cached == "corrupt":  # as `stip-rt track` says it: never random weights instead
        assert code == 2 and exported == [] and "no cached weights" not in caplog.text
        assert f"cached weights of '{name}'" in err and "corrupt" in err and f"weights fetch {name} --force" in err
    else:
        assert code == 0 and len(exported) == 1
        assert "no --weights and no cached weights" in caplog.text and "RANDOM" in caplog.text


def test_fold_and_fusion_ratio_lines() -> None:
    from stip_rt.runtime.bench import BenchResult, fold_ratio_lines

    rows = [
        BenchResult("cuda-fast", 64, 4000.0, 16.0, ""),
        BenchResult("cuda-fast+unfolded", 64, 3200.0, 20.0, ""),
        BenchResult("cuda-fast+unfused", 64, 3000.0, 21.3, ""),
        BenchResult("cuda-fast+branches", 64, 5000.0, 12.8, ""),
        BenchResult("cuda-fast+cudnn-benchmark", 64, 6000.0, 10.7, ""),
        BenchResult("cuda-fast+cudnn-benchmark", 8, 900.0, 8.9, ""),  # no cuda-fast at batch 8: no ratio
        BenchResult("torch+unfused", 64, None, None, "skipped: +unfused applies to cuda-fast only"),
    ]
    assert fold_ratio_lines(rows) == [
        "ratio folded/unfolded cuda-fast batch 64: 1.25x",
        "ratio fused/unfused cuda-fast batch 64: 1.33x",
        "ratio parallel/serial branches cuda-fast+branches batch 64: 1.25x",
        "ratio timed/heuristic cuDNN engines cuda-fast+cudnn-benchmark batch 64: 1.50x",
    ]


def test_branches_variant_turns_parallel_branches_on_for_cuda_fast_only() -> None:
    from stip_rt.errors import BackendError
    from stip_rt.runtime.bench import _build, parse_variant

    v = parse_variant("cuda-fast+branches+bf16")
    assert v.branches and v.fuse and v.precision == "bf16" and not parse_variant("cuda-fast").branches
    with pytest.raises(BackendError, match=r"\+cudnn-benchmark apply to cuda-fast only"):
        _build(torch.nn.Conv2d(3, 3, 1), parse_variant("torch+branches"), "cpu", None)


def test_cudnn_benchmark_variant_turns_it_on_for_cuda_fast_only(monkeypatch) -> None:
    from stip_rt.errors import BackendError
    from stip_rt.runtime import bench

    v = bench.parse_variant("cuda-fast+cudnn-benchmark+branches")
    assert v.cudnn_benchmark and v.branches and not bench.parse_variant("cuda-fast").cudnn_benchmark
    built = {}
    monkeypatch.setattr(bench, "create_backend", lambda model, **kw: built.update(kw))  # no GPU needed
    bench._build(torch.nn.Conv2d(3, 3, 1), v, "cuda", None)
    config = built["config"]
    assert config.cudnn_benchmark and config.parallel_branches and config.cudnn_fusion
    with pytest.raises(BackendError, match=r"\+cudnn-benchmark apply to cuda-fast only"):
        bench._build(torch.nn.Conv2d(3, 3, 1), bench.parse_variant("onnxruntime+cudnn-benchmark"), "cpu", None)


def test_bench_that_measures_nothing_is_an_error(tiny_yaml, capsys) -> None:
    """Every backend skipped (e.g. --device cuda without a GPU, or only GPU backends on a CPU): exit 2, not 0."""
    code = main(["bench", "--model", str(tiny_yaml), "--backends", "cuda-fast+unfused", "--batch", "1",
                 "--seconds", "0.05", "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and "skipped" in captured.out
    assert "nothing was measured: every backend was skipped on device cpu" in captured.err


def test_bench_whose_baseline_is_skipped_says_why_there_are_no_ratio_lines(tiny_yaml, capsys) -> None:
    code = main(["bench", "--model", str(tiny_yaml), "--backends", "cuda-fast,torch", "--batch", "1",
                 "--seconds", "0.01", "--device", "cpu"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "torch        batch   1:" in out and "cuda-fast    skipped:" in out
    assert not any(line.startswith("ratio ") for line in out.splitlines())
    assert "no ratio lines against cuda-fast: it was skipped (above)" in out


def test_export_loads_in_onnxruntime_equals_torch_and_goes_into_a_new_folder(tiny_yaml, tmp_path, capsys) -> None:
    """Random weights come from the fixed seed (the same network as `--weights random` runs), the
    opset asked for is written, and `--out DIR/` (missing folders) gets the default name inside."""
    import numpy as np
    import onnxruntime as ort

    from stip_rt.models import RANDOM_SEED, build_model

    folder = tmp_path / "new" / "sub"
    assert main(["export", "--model", str(tiny_yaml), "--opset", "18", "--out", f"{folder}/"]) == 0
    out = folder / "tiny.onnx"
    assert f"wrote {out} (standard flavour, random weights)" in capsys.readouterr().out
    assert [p.name for p in folder.iterdir()] == ["tiny.onnx"]  # no temp file left
    proto = onnx.load(str(out))
    assert next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 18
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, 3, 128, 96), dtype=np.float32)
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        want = build_model(str(tiny_yaml), seed=RANDOM_SEED).eval()(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape == (3, 14, 64, 48)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.fixture()
def fake_export(monkeypatch):
    """``export_onnx`` replaced: records its paths and writes a small file (or a part of one, then fails)."""
    from stip_rt.errors import BackendError
    from stip_rt.runtime import onnx_export

    calls: list[Path] = []
    fail = {"on": False}

    def export(model, path, config):
        calls.append(path)
        path.write_bytes(b"partial" if fail["on"] else b"onnx")
        if fail["on"]:
            raise BackendError("ONNX export of STIPNet failed: boom")
        return path

    monkeypatch.setattr(onnx_export, "export_onnx", export)
    return calls, fail


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "{model}"], "is the --model file itself"),
        (["--out", "{tmp}/x.engine", "--format", "onnx"], "is a TensorRT engine but --format is onnx"),
        (["--out", "{tmp}/x.onnx", "--format", "engine"], "is an ONNX file but --format is engine"),
        (["--out", "{tmp}/x.engine", "--profile", "1,8"], "--profile '1,8': expected three batch sizes"),
        (["--out", "{tmp}/x.engine", "--profile", "8,1,64"], "--profile '8,1,64'"),
        (["--format", "engine", "--profile", "a,b,c"], "--profile 'a,b,c'"),
    ],
)
def test_export_refuses_a_wrong_output_before_any_work(
    tiny_yaml, tmp_path, fake_export, capsys, extra: list[str], message: str
) -> None:
    before = tiny_yaml.read_bytes()
    argv = [a.format(model=tiny_yaml, tmp=tmp_path) for a in extra]
    assert main(["export", "--model", str(tiny_yaml), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert fake_export[0] == [] and tiny_yaml.read_bytes() == before
    assert not (tmp_path / "x.engine").exists() and not (tmp_path / "x.onnx").exists()


def test_a_failed_export_leaves_the_existing_file_as_it_was(tiny_yaml, tmp_path, fake_export, capsys) -> None:
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the good export of yesterday")
    fake_export[1]["on"] = True
    assert main(["export", "--model", str(tiny_yaml), "--out", str(out)]) == 2
    assert "boom" in capsys.readouterr().err
    assert out.read_bytes() == b"the good export of yesterday"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "tiny.yaml"]  # no partial file
    fake_export[1]["on"] = False
    assert main(["export", "--model", str(tiny_yaml), "--out", str(out)]) == 0
    assert out.read_bytes() == b"onnx" and "it replaced the file that was there" in capsys.readouterr().out


def test_export_of_a_model_file_without_weights_says_the_fix_once(tiny_yaml, tmp_path, fake_export, caplog) -> None:
    assert main(["export", "--model", str(tiny_yaml), "--out", str(tmp_path / "x.onnx")]) == 0
    assert "exporting RANDOM weights" in caplog.text
    assert caplog.text.count("pass --weights CHECKPOINT") == 1
