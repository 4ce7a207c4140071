"""Running again into an existing ``--out``: the checkpoint's model, ``max_steps``, a fresh log, bad paths."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from train_helpers import make_config, tiny_spec

from stip_rt.cli import main
from stip_rt.errors import StipError, WeightsError
from stip_rt.train.logs import RunLog, TrainEvent
from stip_rt.train.trainer import train


def _spec_file(tmp_path: Path, stem: str, **fields) -> Path:
    path = tmp_path / f"{stem}.json"
    path.write_text(json.dumps({**tiny_spec(), **fields}))
    return path


def _steps(config) -> tuple[list[int], object]:
    steps: list[int] = []
    result = train(config, lambda e: steps.append(e.step) if e.kind == "step" else None)
    return steps, result


@pytest.mark.parametrize("other", [
    {"arch": "hrnet", "net": tiny_spec(arch="hrnet")["net"]},  # other tensor names: a state_dict traceback before
    {"input_size": [64, 32]},  # the same tensors at another input size: resumed silently before
], ids=["other-arch", "other-input-size"])
def test_resume_refuses_a_checkpoint_of_another_model(coco, tmp_path, tiny_coco_yaml, other):
    out = tmp_path / "run"
    train(make_config(tiny_coco_yaml, coco, out, max_steps=1))
    changed = _spec_file(tmp_path, "changed", **other)
    with pytest.raises(WeightsError, match=r"checkpoint\.pth is a checkpoint of model tiny-stip-coco17 \(stip, "
                                           r"input 32x32, heatmap 16x16, 17 keypoints coco17\).*--no-resume") as e:
        train(make_config(changed, coco, out, max_steps=2))
    assert "\n" not in str(e.value) and str(out) in str(e.value)


def test_resume_without_a_model_record_fails_in_one_line(coco, tmp_path, tiny_coco_yaml):
    out = tmp_path / "run"
    train(make_config(tiny_coco_yaml, coco, out, max_steps=1))
    state = torch.load(out / "checkpoint.pth", weights_only=True)
    del state["model"]  # as an older checkpoint
    torch.save(state, out / "checkpoint.pth")
    hrnet = _spec_file(tmp_path, "hrnet", **tiny_spec(arch="hrnet"))
    with pytest.raises(WeightsError, match=r"checkpoint\.pth: its model state does not fit this run") as e:
        train(make_config(hrnet, coco, out, max_steps=2))
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def test_rerun_at_max_steps_does_nothing(coco, tmp_path, tiny_coco_yaml, caplog):
    config = make_config(tiny_coco_yaml, coco, tmp_path / "run", max_steps=1)
    assert _steps(config)[0] == [1]
    model = (tmp_path / "run/model.pth").stat().st_mtime_ns
    steps, result = _steps(config)
    assert steps == [] and result.steps == 1 and result.model == tmp_path / "run/model.pth"
    assert "max_steps 1 already reached" in caplog.text
    assert (tmp_path / "run/model.pth").stat().st_mtime_ns == model  # nothing rewritten
    assert _steps(make_config(tiny_coco_yaml, coco, tmp_path / "run", max_steps=2))[0] == [2]


def test_a_fresh_run_sets_the_earlier_run_aside(coco, tmp_path, tiny_coco_yaml):
    out = tmp_path / "run"
    train(make_config(tiny_coco_yaml, coco, out))
    (out / "best.pth").write_bytes(b"an earlier run's best")
    (out / "tb").mkdir()
    (out / "tb/events.out.tfevents.1").write_bytes(b"")
    result = train(make_config(tiny_coco_yaml, coco, out, resume=False))
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"]  # not the earlier run's row and then this one's
    assert result.best is None and not (out / "best.pth").exists() and not (out / "tb").exists()
    old = out / "previous-1"
    assert (old / "best.pth").read_bytes() == b"an earlier run's best"
    assert {p.name for p in old.iterdir()} == {"checkpoint.pth", "best.pth", "model.pth", "final_state.pth",
                                               "log.csv", "tb"}
    train(make_config(tiny_coco_yaml, coco, out, resume=False))
    assert (out / "previous-2/log.csv").exists() and (old / "best.pth").exists()


def test_log_csv_takes_the_columns_of_a_resumed_run_that_validates(tmp_path):
    def row(epoch: int) -> TrainEvent:
        return TrainEvent("epoch", epoch, 3 * (epoch + 1), loss=0.5, terms={"pose": 0.1}, lr=1e-3)

    first = RunLog(tmp_path, ("pose",), (), tensorboard=False)
    first.epoch(row(0))
    first.close()
    resumed = RunLog(tmp_path, ("pose",), ("AP", "AR"), tensorboard=False)
    resumed.epoch(row(1), {"AP": 0.25, "AR": 0.5})
    resumed.close()
    lines = list(csv.reader((tmp_path / "log.csv").open()))
    assert lines[0] == ["epoch", "step", "lr", "loss", "pose", "val_AP", "val_AR"]
    assert all(len(line) == len(lines[0]) for line in lines)
    assert lines[1][:5] == ["1", "3", "0.001", "0.5", "0.1"] and lines[1][5:] == ["", ""]
    assert lines[2][5:] == ["0.25", "0.5"]


def _cli(coco, out: Path, model: str, images: str | None = None) -> list[str]:
    ann, default_images = coco
    return ["train", "--model", model, "--train-ann", str(ann), "--train-images", images or str(default_images),
            "--out", str(out), "--device", "cpu", "--workers", "0", "--batch-size", "2", "--max-steps", "1"]


@pytest.mark.parametrize("case", ["out-is-a-file", "unknown-model", "no-images-folder", "images-is-a-file"])
def test_cli_bad_inputs_fail_in_one_line_and_create_nothing(coco, tmp_path, tiny_coco_yaml, capsys, case):
    out, model, images = tmp_path / "run", str(tiny_coco_yaml), None
    if case == "out-is-a-file":
        out.write_text("not a folder")
        named = str(out)
    elif case == "unknown-model":
        model = named = "hrnet-w32-coco-265x192"
    else:
        images = named = str(tmp_path / "no-images")
        if case == "images-is-a-file":
            Path(images).write_text("")
    assert main(_cli(coco, out, model, images)) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and "\n" not in err and "Traceback" not in err
    assert out.is_file() if case == "out-is-a-file" else not out.exists()


def test_library_checks_the_image_folder_up_front(coco, tmp_path, tiny_coco_yaml):
    with pytest.raises(StipError, match=r"train_images .*no-images: no such folder"):
        train(make_config(tiny_coco_yaml, coco, tmp_path / "run", train_images=str(tmp_path / "no-images"),
                          workers=2))
    assert not (tmp_path / "run").exists()
