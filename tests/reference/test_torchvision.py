"""Reference checks against torchvision's video ResNets.

torchvision does not import beside the CPU build of torch 2.13.0, so these run in a separate
environment: ``make reference`` (torch 2.14.1 + torchvision 0.29.1). Elsewhere they skip.
"""

import pytest
import torch

tv_video = pytest.importorskip("torchvision.models.video", reason="torchvision not installed (run `make reference`)")

from workbench.engine.cost import count_cost, count_params  # noqa: E402
from workbench.models import create_model, from_torchvision_state_dict  # noqa: E402

pytestmark = pytest.mark.reference

CASES = {
    "r3d_18": (33_371_472, 40.697),
    "mc3_18": (11_695_440, 43.343),
    "r2plus1d_18": (31_505_325, 40.519),
}


@pytest.mark.parametrize("name", list(CASES))
def test_counts_match_torchvision(name):
    tv = getattr(tv_video, name)(weights=None)
    ours = create_model(name, num_classes=400)
    assert count_params(ours) == count_params(tv) == CASES[name][0]
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in tv.parameters()]
    ours_g = count_cost(ours, (3, 16, 112, 112)).gmacs
    tv_g = count_cost(tv, (3, 16, 112, 112)).gmacs
    assert round(ours_g, 3) == round(tv_g, 3) == CASES[name][1]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("num_classes", [400, 7])
def test_converted_weights_give_torchvision_logits(name, num_classes):
    torch.manual_seed(0)
    tv = getattr(tv_video, name)(weights=None, num_classes=num_classes)
    # random BN statistics so that the check covers running_mean / running_var too
    for m in tv.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    tv.eval()
    ours = from_torchvision_state_dict(name, tv.state_dict()).eval()
    assert ours.num_classes == num_classes
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        a, b = tv(x), ours(x)
    assert a.shape == b.shape == (2, num_classes)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_converter_rejects_foreign_state_dict():
    tv = tv_video.r3d_18(weights=None)
    with pytest.raises(ValueError, match="does not fit mc3_18|shape mismatch"):
        from_torchvision_state_dict("mc3_18", tv.state_dict())
    with pytest.raises(ValueError, match="no torchvision converter"):
        from_torchvision_state_dict("c3d", tv.state_dict())
