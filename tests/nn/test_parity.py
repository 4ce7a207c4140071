"""Parity with the official STIP release: key manifests of the full-size models, and
every stored output of the small random-weight fixtures (eval, fp32, CPU, 1e-4 of max |ref|)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from load_script import load_script

from stip_rt.models import build_model, flatten_outputs

TOL = 1e-4
PARITY = ["hrnet_c16_coco17", "stipnet_c16_crowdpose14"]
MANIFESTS = {
    "hrnet_w32_coco17": "hrnet-w32-coco-256x192",
    "stipnet_w32_coco17": "stip-w32-coco-256x192",
    "stipnet_w32_crowdpose14": "stip-w32-crowdpose-256x192",
}


def _manifest(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in path.read_text().splitlines():
        name, shape = line.split(" ", 1)
        rows.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


@pytest.mark.parametrize("manifest", sorted(MANIFESTS))
def test_full_size_state_dict_equals_official_manifest(fixtures_dir: Path, manifest: str) -> None:
    want = _manifest(fixtures_dir / "official_keys" / f"{manifest}.keys.txt")
    model = build_model(MANIFESTS[manifest])
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert len(got) == len(want)
    assert [k for k, _ in got] == [k for k, _ in want]  # names and order
    assert got == want  # and shapes


def test_w48_keeps_the_w32_key_names(fixtures_dir: Path) -> None:
    want = [k for k, _ in _manifest(fixtures_dir / "official_keys" / "stipnet_w32_coco17.keys.txt")]
    sd = build_model("stip-w48-coco-256x192").state_dict()
    assert list(sd) == want
    assert sd["kernel_generator.0.weight"].shape == (17 * 48, 48, 1, 1)
    assert sd["ASPP_stage4.project.0.weight"].shape == (48, 240, 1, 1)


def _official_vs_ours(fixtures_dir: Path, name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    prefix = fixtures_dir / "official_parity" / name
    model = build_model(f"{prefix}.json", weights=f"{prefix}.state_dict.pt").eval()
    ref = dict(np.load(f"{prefix}.io.npz"))
    x = torch.from_numpy(ref.pop("input"))
    with torch.no_grad():
        ours = {k: v.numpy() for k, v in flatten_outputs(model.forward_train(x)).items()}
        ours["forward"] = model(x).numpy()
    return ref, ours


@pytest.mark.parametrize("name", PARITY)
def test_every_official_output_within_tolerance(fixtures_dir: Path, name: str) -> None:
    ref, ours = _official_vs_ours(fixtures_dir, name)
    cfg = json.loads((fixtures_dir / "official_parity" / f"{name}.json").read_text())
    assert set(ref) == set(cfg["outputs"]) - {"input"}
    assert set(ours) - {"forward"} == set(ref)  # no output missing, none extra
    for key, want in ref.items():
        assert ours[key].shape == want.shape, key
        err = np.abs(ours[key] - want).max() / np.abs(want).max()
        assert err <= TOL, f"{name}:{key} relative error {err:.2e}"
    # The pruned inference path gives the official final heatmap too.
    err = np.abs(ours["forward"] - ref["keypoint_0"]).max() / np.abs(ref["keypoint_0"]).max()
    assert err <= TOL, f"{name}: inference forward relative error {err:.2e}"


def _run_script(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    rc = load_script("check_parity").main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_check_parity_script_passes_and_fails(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = fixtures_dir / "official_parity" / "hrnet_c16_coco17"
    rc, out, err = _run_script(capsys, str(src))
    assert rc == 0, out + err
    lines = [ln for ln in out.splitlines() if "rel err" in ln]
    assert [ln.split()[0] for ln in lines] == ["keypoint_0", "kernel_0", "semantics_0", "forward"]
    assert all(ln.rstrip().endswith("ok") for ln in lines)

    # The same fixture with one weight perturbed must fail.
    bad = tmp_path / "bad"
    for suffix in (".json", ".io.npz"):
        shutil.copy(f"{src}{suffix}", f"{bad}{suffix}")
    sd = torch.load(f"{src}.state_dict.pt", weights_only=True)
    sd["final_layer.bias"] = sd["final_layer.bias"] + 1.0
    torch.save(sd, f"{bad}.state_dict.pt")
    rc, out, _ = _run_script(capsys, str(bad))
    assert rc == 1
    assert "FAIL" in out and "final_layer" not in out  # an output failed, loading did not

    rc, _, err = _run_script(capsys, str(tmp_path / "nothing"))
    assert rc == 2
    assert "nothing.json" in err


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_check_parity_script_checks_the_served_network(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))  # the ONNX export cache
    src = fixtures_dir / "official_parity" / "stipnet_c16_crowdpose14"
    rc, out, err = _run_script(capsys, str(src), "--backend", backend)
    assert rc == 0, out + err
    served = [ln for ln in out.splitlines() if ln.strip().startswith(f"served:{backend}")]
    assert len(served) == 1 and " ok " in served[0] and "(tol 0.0001)" in served[0]
    # a tolerance no float computation meets: the served row alone fails, exit 1
    rc, out, _ = _run_script(capsys, str(src), "--backend", backend, "--served-tol", "1e-12")
    assert rc == 1 and "FAIL" in out.split("served:")[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_check_parity_cuda_fast_without_a_gpu_is_an_error(fixtures_dir: Path, capsys: pytest.CaptureFixture) -> None:
    src = fixtures_dir / "official_parity" / "hrnet_c16_coco17"
    rc, _, err = _run_script(capsys, str(src), "--backend", "cuda-fast")
    assert rc == 2 and "needs an NVIDIA GPU" in err


@pytest.mark.gpu
@pytest.mark.parametrize("name", PARITY)
def test_check_parity_cuda_fast_served(fixtures_dir: Path, capsys: pytest.CaptureFixture, name: str) -> None:
    rc, out, err = _run_script(capsys, str(fixtures_dir / "official_parity" / name), "--backend", "cuda-fast")
    assert rc == 0, out + err


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_inference_forward_with_each_cpu_iap_impl(fixtures_dir: Path, impl: str) -> None:
    from stip_rt.nn.iap import use_iap_impl

    prefix = fixtures_dir / "official_parity" / "stipnet_c16_crowdpose14"
    model = build_model(f"{prefix}.json", weights=f"{prefix}.state_dict.pt").eval()
    ref = np.load(f"{prefix}.io.npz")
    with torch.no_grad(), use_iap_impl(impl):
        y = model(torch.from_numpy(ref["input"])).numpy()
    err = np.abs(y - ref["keypoint_0"]).max() / np.abs(ref["keypoint_0"]).max()
    assert err <= TOL, f"IaP '{impl}': relative error {err:.2e}"
