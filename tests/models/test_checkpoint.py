"""Checkpoint reading (every format a user meets, always weights_only) and strict loading with clear errors."""

from __future__ import annotations

import collections
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_specs import TINY_BACKBONE, TINY_HRNET, TINY_STIP

from stip_rt.checkpoint import load_weights, map_mmpose_keys, read_state_dict
from stip_rt.errors import WeightsError
from stip_rt.models import build_model

TINY = TINY_STIP


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return build_model(TINY)


@pytest.fixture(scope="module")
def tiny_hrnet() -> torch.nn.Module:
    return build_model(TINY_HRNET)


def _random_state(model: torch.nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone())
        for k, v in model.state_dict().items()
    }


def _assert_loaded(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


# -- formats -----------------------------------------------------------------------------------------


def test_bare_state_dict_roundtrip(tiny: torch.nn.Module, tmp_path: Path) -> None:
    state = _random_state(tiny)
    torch.save(state, tmp_path / "final_state.pth")
    read = read_state_dict(tmp_path / "final_state.pth")
    assert list(read) == list(state)
    load_weights(tiny, tmp_path / "final_state.pth")
    _assert_loaded(tiny, state)


def test_official_training_checkpoint_with_module_prefix(tiny: torch.nn.Module, tmp_path: Path) -> None:
    state = _random_state(tiny, 2)
    ckpt = {
        "epoch": 210,
        "model": "pose_ptnet",  # the official checkpoint.pth stores the model NAME here
        "state_dict": collections.OrderedDict((f"module.{k}", v) for k, v in state.items()),
        "best_state_dict": state,
        "perf": np.float64(0.741),
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]},
    }
    torch.save(ckpt, tmp_path / "checkpoint.pth")
    load_weights(tiny, tmp_path / "checkpoint.pth")
    _assert_loaded(tiny, state)


def test_legacy_non_zip_format(tiny: torch.nn.Module, tmp_path: Path) -> None:
    state = _random_state(tiny, 3)
    torch.save(
        {"state_dict": state, "perf": np.float32(0.5)}, tmp_path / "old.pth", _use_new_zipfile_serialization=False
    )
    load_weights(tiny, tmp_path / "old.pth")
    _assert_loaded(tiny, state)


def _fake_mmengine(monkeypatch: pytest.MonkeyPatch) -> type:
    """Register a throwaway ``mmengine.logging.history_buffer.HistoryBuffer`` (like mmengine's) for pickling."""
    names = ["mmengine", "mmengine.logging", "mmengine.logging.history_buffer"]
    mods = {n: types.ModuleType(n) for n in names}
    for n, m in mods.items():
        monkeypatch.setitem(sys.modules, n, m)

    class HistoryBuffer:
        def __init__(self, values: list[float]) -> None:
            self._log_history = np.asarray(values, dtype=np.float64)
            self._count_history = np.ones(len(values))
            self.max_length = 1_000_000

    HistoryBuffer.__module__ = "mmengine.logging.history_buffer"
    HistoryBuffer.__qualname__ = "HistoryBuffer"
    mods["mmengine.logging.history_buffer"].HistoryBuffer = HistoryBuffer
    return HistoryBuffer


def _fake_config_dict(monkeypatch: pytest.MonkeyPatch) -> type:
    """A dict subclass like mmengine's ``ConfigDict`` (addict-style state)."""
    for n in ("mmengine.config", "mmengine.config.config"):
        monkeypatch.setitem(sys.modules, n, types.ModuleType(n))

    class ConfigDict(dict):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.__dict__["_frozen"] = False

    ConfigDict.__module__ = "mmengine.config.config"
    ConfigDict.__qualname__ = "ConfigDict"
    sys.modules["mmengine.config.config"].ConfigDict = ConfigDict
    return ConfigDict


def _openmmlab_file(path: Path, state: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    history = _fake_mmengine(monkeypatch)
    config_dict = _fake_config_dict(monkeypatch)
    meta = {
        "mmengine_version": "0.7.1",
        "epoch": np.int64(300),
        "iter": np.int32(12),
        "seed": np.int64(2084),
        "dtype": np.dtype("float32"),
        "message_hub": {"log_scalars": collections.OrderedDict(loss=history([0.5, 0.4]))},
        "dataset_meta": {"classes": ("person",)},
        "cfg": config_dict(model={"type": "RTMDet", "deepen_factor": 0.167}, seed=1),
    }
    torch.save({"meta": meta, "state_dict": state, "message_hub": {"buf": history([1.0])}}, path)
    monkeypatch.undo()  # the fake module is gone when the file is loaded, as on a user's machine
    assert "mmengine" not in sys.modules


def test_openmmlab_meta_with_mmengine_and_numpy_objects(tiny: torch.nn.Module, tmp_path: Path) -> None:
    state = _random_state(tiny, 4)
    with pytest.MonkeyPatch.context() as mp:
        _openmmlab_file(tmp_path / "rtmdet.pth", state, mp)
    read = read_state_dict(tmp_path / "rtmdet.pth")
    assert list(read) == list(state) and all(torch.equal(read[k], state[k]) for k in state)


def test_mmpose_hrnet_keys_are_mapped(
    tiny_hrnet: torch.nn.Module, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = _random_state(tiny_hrnet, 5)
    mm = {("keypoint_head." + k if k.startswith("final_layer") else "backbone." + k): v for k, v in state.items()}
    with pytest.MonkeyPatch.context() as mp:
        _openmmlab_file(tmp_path / "hrnet_w32_coco_256x192-c78dce93_20200708.pth", mm, mp)
    caplog.set_level("INFO", logger="stip_rt.checkpoint")
    load_weights(tiny_hrnet, tmp_path / "hrnet_w32_coco_256x192-c78dce93_20200708.pth")
    _assert_loaded(tiny_hrnet, state)
    assert "keypoint_head.final_layer.* -> final_layer.*" in caplog.text
    assert f"{len(state) - 2} keys backbone.*" in caplog.text


def test_mmpose_1x_head_keys_are_mapped(tiny_hrnet: torch.nn.Module) -> None:
    state = _random_state(tiny_hrnet, 6)
    mm = {("head." + k if k.startswith("final_layer") else "backbone." + k): v for k, v in state.items()}
    load_weights(tiny_hrnet, {"meta": {}, "state_dict": mm}, "mmpose-1x.pth")
    _assert_loaded(tiny_hrnet, state)


def test_map_mmpose_keys_leaves_official_names_alone() -> None:
    state = {"conv1.weight": torch.zeros(1), "final_layer.bias": torch.zeros(1)}
    assert map_mmpose_keys(state) == state


def test_full_size_stip_w32_saved_and_reloaded_strictly(tmp_path: Path) -> None:
    model = build_model("stip-w32-coco-256x192")
    torch.save(model.state_dict(), tmp_path / "stip_w32.pth")
    again = build_model("stip-w32-coco-256x192", weights=tmp_path / "stip_w32.pth")
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


# -- refusals ----------------------------------------------------------------------------------------


class Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def test_unsafe_global_is_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {"a": torch.zeros(1)}, "evil": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match=r"evil.pth: refusing to load.*(posix|os|nt)\.system"):
        read_state_dict(tmp_path / "evil.pth")


def test_whole_pickled_module_is_refused(tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")
    with pytest.raises(WeightsError, match=r"module.pth: refusing to load.*state_dict"):
        read_state_dict(tmp_path / "module.pth")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello, this is a text file\n", r"not a PyTorch checkpoint \(starts with b'hell'"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200), "not a PyTorch checkpoint"),
    ],
)
def test_not_a_checkpoint(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message) as info:
        read_state_dict(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_file(tiny: torch.nn.Module, tmp_path: Path, legacy: bool) -> None:
    full = tmp_path / "full.pth"
    torch.save(tiny.state_dict(), full, _use_new_zipfile_serialization=not legacy)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(WeightsError, match=r"cut.pth: truncated or corrupt"):
        read_state_dict(cut)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"nope.pth: file not found"):
        read_state_dict(tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="is a directory"):
        read_state_dict(tmp_path)


def test_no_state_dict_inside(tmp_path: Path) -> None:
    torch.save({"epoch": 3, "notes": "hi"}, tmp_path / "x.pth")
    with pytest.raises(WeightsError, match=r"x.pth: no state_dict found \(top-level keys: 'epoch', 'notes'\)"):
        read_state_dict(tmp_path / "x.pth")


def test_wrong_architecture_hrnet_into_stip(tiny: torch.nn.Module, tiny_hrnet: torch.nn.Module, tmp_path: Path) -> None:
    torch.save(tiny_hrnet.state_dict(), tmp_path / "hrnet.pth")
    with pytest.raises(WeightsError) as info:
        load_weights(tiny, tmp_path / "hrnet.pth")
    msg = str(info.value)
    n_heads = len(tiny.state_dict()) - len(tiny_hrnet.state_dict())
    assert "hrnet.pth does not match the model" in msg
    assert f"{n_heads} missing (ASPP_stage4.convs.0.0.weight," in msg and ", ...)" in msg
    assert "an HRNet baseline? use an hrnet-* model" in msg and "model: tiny-stip" in msg


def test_wrong_architecture_stip_into_hrnet(tiny: torch.nn.Module, tiny_hrnet: torch.nn.Module, tmp_path: Path) -> None:
    torch.save(tiny.state_dict(), tmp_path / "stip.pth")
    with pytest.raises(WeightsError, match=r"stip.pth does not match.*\d+ unexpected.*use a stip-\* model"):
        load_weights(tiny_hrnet, tmp_path / "stip.pth")


def test_wrong_joint_count(tmp_path: Path) -> None:
    coco = build_model({**TINY, "schema": "coco17"})
    torch.save(coco.state_dict(), tmp_path / "coco.pth")
    with pytest.raises(WeightsError) as info:
        load_weights(build_model(TINY), tmp_path / "coco.pth")
    msg = str(info.value)
    assert "10 mis-shaped" in msg and "final_layer.weight [17, 8, 1, 1] vs model [14, 8, 1, 1]" in msg
    assert "the checkpoint has 17 joints, the model 14" in msg


def test_wrong_width(tmp_path: Path) -> None:
    wide = build_model({**TINY, "net": {"hrnet": {**TINY_BACKBONE, "widths": [16, 32, 48, 64]}}})
    with pytest.raises(WeightsError, match=r"state_dict does not match.*mis-shaped.*different HRNet width"):
        load_weights(build_model(TINY), wide.state_dict())


@pytest.mark.parametrize("legacy", [False, True])
def test_damage_anywhere_is_a_whole_sentence_weights_error(tiny: torch.nn.Module, tmp_path: Path, legacy: bool) -> None:
    """Cuts and overwritten bytes all over a real checkpoint: always one WeightsError naming the file,
    with torch's reason as a whole first sentence (not cut mid-word, no paragraphs of advice)."""
    import random

    full = tmp_path / "full.pth"
    torch.save(tiny.state_dict(), full, _use_new_zipfile_serialization=not legacy)
    data = full.read_bytes()
    rng = random.Random(0)
    bad = tmp_path / "bad.pth"
    damaged = [data[:cut] for cut in range(8, len(data), max(1, len(data) // 100))]  # cut at 100 places
    for _ in range(20):  # 40 bytes overwritten somewhere
        b = bytearray(data)
        at = rng.randrange(len(b) - 40)
        b[at : at + 40] = bytes(rng.randrange(256) for _ in range(40))
        damaged.append(bytes(b))
    for content in damaged:
        bad.write_bytes(content)
        try:
            read_state_dict(bad)
        except WeightsError as e:
            msg = str(e)
            assert str(bad) in msg and "\n" not in msg and len(msg) < 400, msg
            assert "there is a high likelihood" not in msg and "In PyTorch 2.6" not in msg, msg
            reason = msg.rsplit("(", 1)[-1]
            assert not reason.endswith(("is)", "the)", "che)")), msg  # never cut mid-sentence


def test_truncated_zip_checkpoint_message_is_one_sentence(tiny: torch.nn.Module, tmp_path: Path) -> None:
    full = tmp_path / "full.pth"
    torch.save(tiny.state_dict(), full)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[:100])
    with pytest.raises(WeightsError) as info:
        read_state_dict(cut)
    assert str(info.value) == (
        f"checkpoint {cut}: truncated or corrupt "
        "(PytorchStreamReader failed reading zip archive: failed finding central directory)"
    )
