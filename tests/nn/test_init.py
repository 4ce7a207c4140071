"""The official weight initialisation (STIP_SPEC §1.7): N(0, 0.001²) weights, zero biases, BatchNorm 1/0."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stip_rt.models import build_model
from stip_rt.nn.init import INIT_STD, official_init

TINY_HRNET = {"widths": [8, 16, 24, 32], "num_modules": [1, 1, 1], "num_blocks": 1, "stem_blocks": 1}
SPECS = {
    "stip": {"arch": "stip", "input_size": [32, 32], "net": {"hrnet": TINY_HRNET}},
    "hrnet": {"arch": "hrnet", "input_size": [32, 32], "net": TINY_HRNET},
    "simplebaseline": {"arch": "simplebaseline", "input_size": [32, 32],
                       "net": {"depth": 18, "deconv_channels": [16, 16, 16]}},
}


@pytest.mark.parametrize("arch", SPECS)
def test_official_init_of_every_layer(arch):
    torch.manual_seed(0)
    model = official_init(build_model(SPECS[arch]))
    weights = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    assert weights and norms
    values = torch.cat([m.weight.detach().flatten() for m in weights])
    assert abs(float(values.std()) - INIT_STD) < 0.05 * INIT_STD and abs(float(values.mean())) < 1e-4
    assert all(float(m.weight.detach().abs().max()) < 10 * INIT_STD for m in weights)  # every layer, not on average
    assert all(m.bias is None or not m.bias.detach().any() for m in weights)
    assert all(torch.equal(m.weight.detach(), torch.ones_like(m.weight)) and not m.bias.detach().any() for m in norms)


def test_build_model_keeps_pytorch_defaults():
    # inference builds models with PyTorch's defaults and loads weights over them: the init is the trainer's
    torch.manual_seed(0)
    model = build_model(SPECS["hrnet"])
    assert float(model.final_layer.weight.detach().std()) > 10 * INIT_STD
