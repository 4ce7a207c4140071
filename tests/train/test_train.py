"""Training: dataset targets, losses, and a few real optimisation steps on shared CrowdPose data."""

import json

import numpy as np
import pytest
import torch

from stip_rt.cli import main
from stip_rt.data.keypoints_dataset import KeypointsDataset, load_instances
from stip_rt.errors import DataError
from stip_rt.models import build_model
from stip_rt.schemas import CROWDPOSE14
from stip_rt.train.losses import joints_mse, stip_loss
from stip_rt.train.trainer import TrainConfig, train


@pytest.fixture(scope="module")
def crowdpose(data_dir):
    return data_dir / "crowdpose/annotations/crowdpose_test_sample.json", data_dir / "crowdpose/images"


@pytest.fixture(scope="module")
def tiny_spec(fixtures_dir):
    return json.loads((fixtures_dir / "official_parity/stipnet_c16_crowdpose14.json").read_text())


def test_instances_and_targets(crowdpose):
    ann, images = crowdpose
    inst = load_instances(ann, images, CROWDPOSE14)
    assert len(inst) == 2  # the third person has no labelled keypoint
    ds = KeypointsDataset(inst, CROWDPOSE14, (256, 192), (128, 96), sigma=3.0, train=False)
    x, t = ds[0]
    assert x.shape == (3, 256, 192) and t["heatmap"].shape == (14, 128, 96)
    vis = inst[0].joints[:, 2] > 0
    # every visible joint inside the crop gets a unit peak; invisible ones an empty map
    assert np.allclose(t["heatmap"].amax(dim=(1, 2)).numpy()[vis & (t["weight"][:, 0].numpy() > 0)], 1.0)
    assert float(t["heatmap"][~vis].abs().sum()) == 0
    assert torch.equal(t["semantics"], (t["weight"][:, 0] > 0).float())
    assert t["mask"].shape == (1, 128, 96) and 0 < float(t["mask"].mean()) < 0.5


def test_augmentation_is_seeded(crowdpose):
    ann, images = crowdpose
    inst = load_instances(ann, images, CROWDPOSE14)
    a = KeypointsDataset(inst, CROWDPOSE14, (256, 192), (128, 96), 3.0, train=True, seed=1)
    b = KeypointsDataset(inst, CROWDPOSE14, (256, 192), (128, 96), 3.0, train=True, seed=1)
    assert torch.equal(a[1][0], b[1][0])
    a.epoch = 1
    assert not torch.equal(a[1][0], b[1][0])


def test_bad_annotations(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(DataError, match=r"bad\.json"):
        load_instances(bad, tmp_path, CROWDPOSE14)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
                                 "annotations": [{"image_id": 1, "bbox": [0, 0, 5, 5], "keypoints": [1, 1, 2] * 17}]}))
    with pytest.raises(DataError, match="17 keypoints"):
        load_instances(wrong, tmp_path, CROWDPOSE14)


def test_joints_mse_matches_official_formula():
    pred, gt = torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5)
    w = torch.tensor([[[1.0], [0.0], [1.0]], [[1.0], [1.0], [0.0]]])
    expected = 0.5 * ((w[..., None] * (pred - gt)) ** 2).sum() / (2 * 3 * 4 * 5)
    assert torch.allclose(joints_mse(pred, gt, w), expected)


def test_loss_decreases_on_a_fixed_batch(crowdpose, tiny_spec):
    ann, images = crowdpose
    torch.manual_seed(0)
    model = build_model(tiny_spec).train()
    ds = KeypointsDataset(load_instances(ann, images, CROWDPOSE14), CROWDPOSE14, (128, 96), (64, 48), 3.0, train=False)
    x = torch.stack([ds[i][0] for i in range(2)])
    t = {k: torch.stack([ds[i][1][k] for i in range(2)]) for k in ("heatmap", "weight", "mask", "semantics")}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss, terms = stip_loss(model.forward_train(x), t)
        assert set(terms) == {"pose", "sp_pose", "mask", "semantics", "kernel"}
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]


def test_train_writes_official_checkpoint_and_resumes(crowdpose, tiny_spec, tmp_path):
    ann, images = crowdpose
    spec_file = tmp_path / "tiny.json"
    spec_file.write_text(json.dumps(tiny_spec))
    cfg = TrainConfig(model=str(spec_file), train_ann=str(ann), train_images=str(images), out_dir=str(tmp_path / "run"),
                      epochs=2, batch_size=2, workers=0, device="cpu")
    steps = []
    final = train(cfg, lambda e: steps.append(e.step) if e.kind == "step" else None).final
    assert steps == [1, 2]  # 2 labelled people, batch 2 → 1 step per epoch
    state = torch.load(final, weights_only=True)
    build_model(tiny_spec).load_state_dict(state, strict=True)
    more = TrainConfig(**{**cfg.__dict__, "epochs": 3})
    train(more, lambda e: steps.append(e.step) if e.kind == "step" else None)
    assert steps == [1, 2, 3]  # resumed at epoch 2


def test_cli_print_config(capsys):
    assert main(["train", "--model", "stip-w32-crowdpose-256x192", "--train-ann", "a.json", "--train-images", "im",
                 "--set", "augment.flip_prob=0", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "flip_prob: 0" in out and "milestones:" in out
    assert main(["train", "--model", "x", "--train-ann", "a", "--train-images", "b", "--set", "augmnt.x=1"]) == 2
