"""build_model / ModelSpec / the zoo configs: every way to name a model, and every way to get it wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from tiny_specs import TINY_BACKBONE, TINY_STIP, TINY_STIP_FLAT

import stip_rt.paths as paths
from stip_rt.errors import ConfigError
from stip_rt.models import ModelSpec, build_model, load_spec, zoo_names
from stip_rt.nn.config import HRNetConfig, PoseResNetConfig, StipConfig
from stip_rt.nn.hrnet import HRNet
from stip_rt.nn.resnet import PoseResNet
from stip_rt.nn.stip import STIPNet

ZOO = [
    f"{arch}-w{w}-{ds}-{size}"
    for arch in ("stip", "hrnet")
    for w in (32, 48)
    for ds in ("coco", "crowdpose")
    for size in ("256x192", "384x288")
]
SIMPLEBASELINE = [f"simplebaseline-res{d}-coco-{size}" for d in (50, 101, 152) for size in ("256x192", "384x288")]
TINY = TINY_STIP


def _backbone(spec: ModelSpec) -> HRNetConfig:
    net = spec.net
    return net.hrnet if isinstance(net, StipConfig) else net


def test_zoo_has_the_16_stip_hrnet_configs_and_6_simplebaselines() -> None:
    assert sorted(zoo_names()) == sorted(ZOO + SIMPLEBASELINE)


@pytest.mark.parametrize("name", SIMPLEBASELINE)
def test_simplebaseline_zoo_spec_fields(name: str) -> None:
    spec = load_spec(name)
    h, w = (int(v) for v in name.rsplit("-", 1)[1].split("x"))
    assert spec.arch == "simplebaseline" and spec.decode == "hrnet"
    assert isinstance(spec.net, PoseResNetConfig) and spec.net.depth == int(name.split("-")[1][3:])
    assert spec.num_joints == spec.net.num_joints == 17
    assert spec.schema == "coco17" and spec.input_size == (h, w) and spec.heatmap_size == (h // 4, w // 4)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_spec_fields(name: str) -> None:
    spec = load_spec(name)
    arch, width, ds, size = name.split("-")
    h, w = (int(v) for v in size.split("x"))
    assert spec.name == name and spec.arch == arch and spec.decode == arch
    assert type(spec.net) is {"stip": StipConfig, "hrnet": HRNetConfig}[arch]
    assert _backbone(spec).widths == tuple(int(width[1:]) * m for m in (1, 2, 4, 8))
    assert spec.schema == {"coco": "coco17", "crowdpose": "crowdpose14"}[ds]
    assert spec.num_joints == _backbone(spec).num_joints == {"coco": 17, "crowdpose": 14}[ds]
    assert spec.input_size == (h, w)
    assert spec.heatmap_size == ((h // 2, w // 2) if arch == "stip" else (h // 4, w // 4))
    assert spec.stride == (2 if arch == "stip" else 4)
    hr = _backbone(spec)
    assert hr.num_modules == (1, 4, 3) and hr.num_blocks == 4 and hr.stem_blocks == 4
    assert spec.pixel_mean == (0.485, 0.456, 0.406) and spec.pixel_std == (0.229, 0.224, 0.225)
    # the official CrowdPose HRNet baseline crops without the x1.25 padding (STIP_SPEC §7.7)
    assert spec.box_padding == (1.0 if (arch, ds) == ("hrnet", "crowdpose") else 1.25)
    assert spec.aspect_ratio == 0.75


def test_build_by_name_gives_the_official_model_size() -> None:
    model = build_model("stip-w32-crowdpose-256x192")
    assert isinstance(model, STIPNet) and model.spec.name == "stip-w32-crowdpose-256x192"
    assert sum(p.numel() for p in model.parameters()) == 28_657_241  # STIP_SPEC §1.3
    hrnet = build_model("hrnet-w32-coco-256x192")
    assert type(hrnet) is HRNet and sum(p.numel() for p in hrnet.parameters()) == 28_536_113
    res50 = build_model("simplebaseline-res50-coco-256x192")
    assert type(res50) is PoseResNet and sum(p.numel() for p in res50.parameters()) == 33_999_697  # mmpose: 34.00M


def test_build_from_dict_yaml_path_and_spec_are_equal(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    a, b = build_model(TINY), build_model(path)
    backbone = HRNetConfig(widths=(8, 16, 24, 32), num_modules=(1, 1, 1), num_blocks=1, stem_blocks=1)
    c = build_model(ModelSpec(name="tiny-stip", schema="crowdpose14", input_size=(64, 64), net=StipConfig(backbone)))
    assert a.spec == b.spec == c.spec
    assert a.spec.name == "tiny-stip" and a.spec.input_size == (64, 64)
    with torch.no_grad():
        y = a.eval()(torch.randn(1, 3, 64, 64))
    assert y.shape == (1, 14, *a.spec.heatmap_size)


def test_zoo_yaml_by_path_is_named_by_its_file() -> None:
    from stip_rt.paths import models_dir

    assert load_spec(models_dir() / "hrnet-w48-coco-384x288.yaml") == load_spec("hrnet-w48-coco-384x288")


def test_build_from_parity_fixture_json(fixtures_dir: Path) -> None:
    model = build_model(fixtures_dir / "official_parity" / "stipnet_c16_crowdpose14.json")
    spec = model.spec
    hr = _backbone(spec)
    assert spec.arch == "stip" and hr.widths == (16, 32, 64, 128) and hr.num_modules == (1, 1, 1)
    assert hr.num_blocks == 2 and spec.input_size == (128, 96) and spec.heatmap_size == (64, 48)
    assert spec.schema == "crowdpose14"
    hr = load_spec(fixtures_dir / "official_parity" / "hrnet_c16_coco17.json")
    assert hr.arch == "hrnet" and hr.heatmap_size == (32, 24) and hr.decode == "hrnet"


def test_stip_rt_exports_build_model() -> None:
    import stip_rt

    assert stip_rt.build_model is build_model


def test_unknown_zoo_name_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"model 'stip-w32-coco-256x129'.*did you mean 'stip-w32-coco-256x192'"):
        load_spec("stip-w32-coco-256x129")


def _net(**backbone) -> dict:
    return {"net": {"hrnet": {**TINY_BACKBONE, **backbone}}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_net(widht=[8, 16, 24, 32]), r"'net': 'hrnet': unknown key 'widht' \(did you mean 'widths'\?\)"),
        ({"widht": [8, 16, 24, 32]}, r"unknown key 'widht' \(did you mean 'net.hrnet.widths'\?\)"),
        ({"inputsize": [64, 64]}, r"unknown key 'inputsize' \(did you mean 'input_size'\?\)"),
        ({"num_joints": 17}, r"'num_joints' is 17 but schema 'crowdpose14' has 14"),
        (_net(num_joints=17), r"'num_joints' is 17 but the schema has 14"),
        ({"heatmap_size": [16, 16]}, r"'heatmap_size' \[16, 16\] does not match"),
        ({"input_size": [60, 64]}, r"'input_size' must be positive multiples of 32"),
        ({"arch": "resnet"}, r"'arch': 'resnet' is not one of"),
        ({"schema": "mpii"}, r"mpii"),
        ({"net": {"hrnet": TINY_BACKBONE, "up_scale": 1}}, r"up_scale"),
        (_net(widths=[8, 16, 24]), r"widths"),
        ({"net": TINY_BACKBONE}, r"'widths'\] are backbone fields: put them under 'net: hrnet:'"),
        ({"net": [1, 2]}, r"'net': expected a mapping of StipConfig fields"),
        ({"widths": [8, 16, 24, 32]}, r"\['widths'\] are network fields: put them under 'net'"),
        ({"arch": "simplebaseline", "net": {"depth": 42}}, r"'depth' must be one of"),
        ({"arch": "hrnet", "net": {"up_scale": 2}}, r"unknown key 'up_scale'"),
    ],
)
def test_invalid_spec_is_one_clear_config_error(tmp_path: Path, change: dict, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, **change}))
    with pytest.raises(ConfigError, match=message) as info:
        build_model(path)
    assert str(path) in str(info.value)


def test_missing_yaml_and_bad_fixture_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "fixture.json"
    bad.write_text('{"arch": "stipnet", "hrnet_channels": [16, 32, 64, 128]}')
    with pytest.raises(ConfigError, match=r"fixture.json: not a valid parity fixture config"):
        load_spec(bad)


def test_zoo_yaml_manifest_is_not_a_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("zoo", "stip-w32-coco-256x192"):
        (tmp_path / f"{name}.yaml").write_text("arch: stip\n")
    monkeypatch.setattr(paths, "models_dir", lambda: tmp_path)
    assert zoo_names() == ["stip-w32-coco-256x192"]


def test_derived_fields_come_from_schema_input_size_and_network() -> None:
    spec = ModelSpec(schema="crowdpose14", input_size=(384, 288), net=HRNetConfig())
    assert spec.arch == "hrnet" and spec.decode == "hrnet" and spec.net.num_joints == spec.num_joints == 14
    assert spec.heatmap_size == (96, 72) and spec.stride == 4
    stip = ModelSpec(net=StipConfig(up_scale=4))
    assert stip.arch == "stip" and stip.decode == "stip" and stip.num_joints == stip.net.hrnet.num_joints == 17
    assert stip.heatmap_size == (256, 192) and stip.stride == 1
    assert ModelSpec(net=PoseResNetConfig(depth=18)).heatmap_size == (64, 48)
    assert ModelSpec(net=HRNetConfig(), decode="stip").decode == "stip"  # stated: kept


def test_the_flat_format_still_loads_to_the_same_spec(tmp_path: Path) -> None:
    path = tmp_path / "flat.yaml"
    path.write_text(yaml.safe_dump({**TINY_STIP_FLAT, "depth": 50}))  # a field of another arch: ignored, as before
    assert load_spec(path) == load_spec(TINY_STIP_FLAT) == load_spec(TINY)


def test_to_dict_reads_back_to_the_same_spec(tmp_path: Path) -> None:
    for name in ("stip-w48-crowdpose-384x288", "hrnet-w32-coco-256x192", "simplebaseline-res101-coco-384x288"):
        spec = load_spec(name)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec.to_dict()))
        assert load_spec(path) == spec


@pytest.mark.parametrize("name", ZOO + SIMPLEBASELINE)
def test_zoo_yaml_states_only_what_differs_from_the_defaults(name: str) -> None:
    from stip_rt.paths import models_dir

    data = yaml.safe_load((models_dir() / f"{name}.yaml").read_text())
    assert "num_joints" not in data and "heatmap_size" not in data and "name" not in data
    spec, default = load_spec(name), ModelSpec()
    for key, value in data.items():
        if key == "arch":  # always stated: it says which network 'net' configures
            continue
        if key == "net":
            net_default = type(spec.net)()
            for sub in value:
                assert getattr(spec.net, sub) != getattr(net_default, sub), f"{name}: net.{sub} restates the default"
            continue
        assert getattr(spec, key) != getattr(default, key), f"{name}: {key} restates the default"
