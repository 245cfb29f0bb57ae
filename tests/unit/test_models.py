import pytest
import torch

from workbench.engine.cost import count_cost, count_params
from workbench.models import build_model, create_model, list_models, model_info
from workbench.strategy import Strategy, list_presets, preset


def _tiny_input(name, frames=8, size=32):
    return torch.randn(2, 3, frames, size, size)


def _kw(name, frames=8, size=32):
    spec = model_info(name)
    if spec.backbone == "c3d":
        return {"num_frames": frames, "size": size}
    if spec.preset == "r2d":
        return {"num_frames": frames}
    return {}


@pytest.mark.parametrize("name", list_models())
def test_every_named_model_tiny_forward_backward(name):
    model = create_model(name, tiny=True, num_classes=5, **_kw(name))
    x = _tiny_input(name)
    out = model(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert count_params(model) < 2_000_000


@pytest.mark.parametrize(
    "name,params",
    [("r3d_18", 33_371_472), ("mc3_18", 11_695_440), ("r2plus1d_18", 31_505_325)],
)
def test_torchvision_parameter_counts(name, params):
    assert count_params(create_model(name, num_classes=400)) == params


def test_template_densenet121_params_and_macs():
    # The S+ST template counts 21.4M (paper, Table 1: Something V1, 174 classes); 2D-only 7.17M.
    m = create_model("densenet121_template", num_classes=174)
    assert round(count_params(m) / 1e6, 2) == 21.40
    s = build_model(Strategy("densenet121", ("S",) * 58), num_classes=174)  # 5x7x7 stem kept
    assert round(count_params(s) / 1e6, 2) == 7.17
    # 8x temporal reduction (the authors' v1): 31.3 G MACs at 16x256^2; without it 161 G
    m8 = create_model("densenet121_template", num_classes=174, temporal_reduction=8)
    assert round(count_cost(m8, (3, 16, 256, 256)).gmacs, 1) == 31.3
    assert round(count_cost(m, (3, 16, 256, 256)).gmacs) == 161


def test_literature_sizes():
    # Tran et al. 2018 (18 layers): R2D 11.4M; R(2+1)D with the per-conv M_i rule 33.4M
    assert round(count_params(create_model("f_r2d_18")) / 1e6, 1) == 11.4
    assert round(count_params(build_model(preset("r2plus1d"), num_classes=400)) / 1e6, 1) == 33.4
    # R(2+1)D-34 and R3D-34 63.7M; ir-CSN-50 as pytorchvideo's CSN-R50 (13,131,152)
    assert round(count_params(create_model("r2plus1d_34")) / 1e6, 1) == 63.7
    assert round(count_params(create_model("r3d_34")) / 1e6, 1) == 63.7
    assert count_params(create_model("ir_csn_50")) == 13_131_152
    # C3D: 78.4M with 101 classes (Caffe ceil-mode pool5 -> 8192 features), 38.5 GMACs per clip
    c3d = create_model("c3d")
    assert round(count_params(c3d) / 1e6, 1) == 78.4
    assert round(count_cost(c3d, (3, 16, 112, 112)).gmacs, 1) == 38.5


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50", "densenet-tiny", "c3d", "resnet26-template"])
def test_every_preset_builds_on_its_backbone(backbone):
    for name in list_presets(backbone):
        s = preset(name, backbone)
        kw = {"num_frames": 8, "size": 32} if backbone == "c3d" or s.stem == "fold" else {}
        if s.stem == "fold":
            kw.pop("size", None)
        model = build_model(s, tiny=True, num_classes=3, **kw)
        with torch.no_grad():
            assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 3), name


def test_mc3_keeps_time_r3d_reduces_it():
    feats = {}
    for name in ("r3d_18", "mc3_18"):
        m = create_model(name, tiny=True).eval()
        x = torch.randn(1, 3, 16, 32, 32)
        with torch.no_grad():
            h = m.layer4(m.layer3(m.layer2(m.layer1(m.stem(x)))))
        feats[name] = h.shape[2]
    assert feats == {"r3d_18": 2, "mc3_18": 16}


def test_channels_last_matches_contiguous():
    torch.manual_seed(0)
    a = create_model("r2plus1d_18", tiny=True, channels_last=False).eval()
    b = create_model("r2plus1d_18", tiny=True, channels_last=True).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)


def test_bad_input_errors():
    m = create_model("r3d_18", tiny=True)
    with pytest.raises(ValueError, match=r"5-D clip batch B C T H W"):
        m(torch.randn(3, 8, 32, 32))
    with pytest.raises(ValueError, match=r"expects 3 input channels .* got 2"):
        m(torch.randn(1, 2, 8, 32, 32))
    with pytest.raises(ValueError, match="floating-point"):
        m(torch.zeros(1, 3, 8, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"unknown model 'r4d_18'.*r3d_18"):
        create_model("r4d_18")
    with pytest.raises(ValueError, match="strategy is for backbone 'resnet18', not 'resnet34'"):
        build_model(preset("r3d"), backbone="resnet34")
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        create_model("r3d_18", tiny=True, num_classes=0)
    with pytest.raises(ValueError, match="R2D stem was built for 8 frames, got 4"):
        create_model("r2d_18", tiny=True, num_frames=8)(torch.randn(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="pass num_frames/size"):
        create_model("c3d", tiny=True)(torch.randn(1, 3, 8, 64, 64))


def test_strategy_travels_with_model():
    s = Strategy("resnet18", ("ST", "S+ST", "2D", "ST(2+1)D", "P3D-B", "ip-CSN", "T", "S+T+ST"))
    m = build_model(s, tiny=True, num_classes=4)
    assert m.strategy == s
    units = [type(blk.conv1).__name__ for _, blk in m.layer_modules()]
    assert len(units) == 8
    assert [blk.conv1.name for _, blk in m.layer_modules()] == list(s.units)


def test_the_registry_says_what_a_model_needs_of_the_clip():
    from workbench.models import clip_kwargs, list_models, model_info

    assert model_info("c3d").clip_kwargs(8, 32) == {"num_frames": 8, "size": 32}
    assert model_info("r2d_18").clip_kwargs(8, 32) == {"num_frames": 8}
    needy = {n for n in list_models() if model_info(n).clip_kwargs(8, 32)}
    assert needy == {"c3d", "r2d_18"}
    assert clip_kwargs(model_info("r3d_18").strategy(), 8, 32) == {}
