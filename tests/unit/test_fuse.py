import pytest
import torch
from torch import nn

from workbench.models import build_model, create_model
from workbench.models.fuse import fuse_for_inference
from workbench.strategy import preset


def _randomise_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("name", ["r3d", "r2plus1d", "mc3", "s+st", "ir-csn", "p3d", "ip-csn", "f-r2d"])
def test_fused_equals_original(name):
    torch.manual_seed(0)
    model = build_model(preset(name), tiny=True, num_classes=5)
    _randomise_bn(model)
    model.eval()
    fused = fuse_for_inference(model)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)
    n_bn = lambda m: sum(isinstance(k, nn.BatchNorm3d) for k in m.modules())  # noqa: E731
    assert n_bn(fused) < n_bn(model)
    if name in ("r3d", "r2plus1d", "mc3", "s+st", "ir-csn", "f-r2d"):
        assert n_bn(fused) == 0
    assert model.training is False and any(isinstance(k, nn.BatchNorm3d) for k in model.modules())


def test_fused_bottleneck():
    model = create_model("r3d_50", tiny=True, num_classes=3)
    _randomise_bn(model)
    model.eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fuse_for_inference(model)(x), model(x), rtol=1e-4, atol=1e-5)
