import json
import subprocess
import sys

import pytest

from workbench.strategy import (
    UNIT_NAMES,
    Strategy,
    backbone_layout,
    list_backbones,
    list_presets,
    parse_strategy,
    preset,
)


def test_no_torch_import():
    code = "import sys, workbench.strategy; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_immutable_and_hashable():
    s = Strategy("resnet18", ("ST",) * 8)
    with pytest.raises(AttributeError):
        s.backbone = "resnet34"  # type: ignore[misc]
    assert hash(s) == hash(Strategy("resnet18", ["ST"] * 8))
    assert s == Strategy("resnet18", ["ST"] * 8, stem="3D")


def test_json_round_trip_every_preset_every_backbone():
    for bb in list_backbones():
        for name in list_presets(bb):
            s = preset(name, bb)
            back = Strategy.from_json(s.to_json())
            assert back == s and back.name == s.name
            assert Strategy.from_code(s.code) == s
            assert json.loads(s.to_json())["units"] == list(s.units)


def test_key_short_stable_and_distinct():
    a = preset("r3d")
    assert len(a.key) == 10
    assert a.key == Strategy("resnet18", ("ST",) * 8, "3D").key  # name does not enter the key
    keys = {preset(p).key for p in list_presets("resnet18")}
    codes = {preset(p).code for p in list_presets("resnet18")}
    assert len(keys) == len(codes)  # equal strategies share a key, distinct ones do not


def test_validation_names_layer_value_and_allowed():
    with pytest.raises(ValueError, match=r"layer 3: unit 'X3D'.*allowed units: S, T, ST"):
        Strategy("resnet18", ("ST", "ST", "ST", "X3D", "ST", "ST", "ST", "ST"))
    with pytest.raises(ValueError, match=r"needs 8 units .* got 7"):
        Strategy("resnet18", ("ST",) * 7)
    with pytest.raises(ValueError, match=r"unknown backbone 'resnet19'.*resnet18"):
        Strategy("resnet19", ("ST",) * 8)
    with pytest.raises(ValueError, match=r"layer 0: unit 'P3D-A' is not allowed on backbone 'densenet-tiny'"):
        Strategy("densenet-tiny", ("P3D-A",) + ("S",) * 7)
    with pytest.raises(ValueError, match=r"stem 'fold' is not allowed"):
        Strategy("densenet-tiny", ("S",) * 8, stem="fold")
    with pytest.raises(ValueError, match="unknown preset 'mc9'"):
        preset("mc9")
    with pytest.raises(ValueError, match="not meaningful on backbone 'densenet121'"):
        preset("p3d", "densenet121")


def test_literature_presets_resnet18():
    L = 8
    assert preset("s").units == ("S",) * L and preset("s").stem == "2D"
    assert preset("st").units == ("ST",) * L
    assert preset("s+st").units == ("S+ST",) * L
    assert preset("r2plus1d").units == ("ST(2+1)D",) * L and preset("r2plus1d").stem == "(2+1)D"
    # torchvision mc3_18: 3D in conv1 and conv2_x, 2D in conv3_x..conv5_x
    assert preset("mc3").units == ("ST",) * 2 + ("2D",) * 6 and preset("mc3").stem == "3D"
    assert preset("rmc3").units == ("2D",) * 2 + ("ST",) * 6 and preset("rmc3").stem == "2D"
    assert preset("mc5").units == ("ST",) * 6 + ("2D",) * 2
    assert preset("mc2").units == ("2D",) * 8
    assert preset("bottom-heavy").units == ("ST",) * 4 + ("2D",) * 4
    assert preset("top-heavy").units == ("2D",) * 4 + ("ST",) * 4
    assert preset("p3d").units == ("P3D-A", "P3D-B", "P3D-C") * 2 + ("P3D-A", "P3D-B")
    assert preset("ir-csn").units == ("ir-CSN",) * L


def test_every_valid_mc_x():
    names = list_presets("resnet18")
    for x in range(2, 6):
        assert f"mc{x}" in names and f"rmc{x}" in names
    # C3D groups are conv1..conv5: mc2..mc5 all split the network
    c3d = list_presets("c3d")
    assert preset("mc3", "c3d").units == ("ST", "ST", "2D", "2D", "2D", "2D", "2D", "2D")
    assert "rmc2" in c3d


def test_opt_rule_densenet121():
    s = preset("opt", "densenet121")
    n = 58
    expected = tuple("S+ST" if (i < 29 or i >= n - 3) else "ST" for i in range(n))
    assert s.units == expected
    assert s.counts() == {"S+ST": 32, "ST": 26}
    assert set(list_presets("densenet121")) >= {"s", "st", "s+st", "opt", "mc3", "rmc4", "bottom-heavy", "top-heavy"}


def test_layouts():
    assert backbone_layout("densenet121").num_layers == 58
    assert backbone_layout("resnet50").num_layers == 16
    assert backbone_layout("resnet152").num_layers == 50
    assert backbone_layout("c3d").num_layers == 8


def test_parse_and_diff(tmp_path):
    a, b = preset("mc3"), preset("r3d")
    assert b.diff(a) == [(i, "ST", "2D") for i in range(2, 8)]
    f = tmp_path / "s.json"
    f.write_text(a.to_json())
    assert parse_strategy(str(f)) == a
    assert parse_strategy(a.code) == a
    assert parse_strategy("opt", "densenet-tiny").backbone == "densenet-tiny"
    with pytest.raises(ValueError, match="unknown unit code 'z'"):
        Strategy.from_code("resnet18:33z33333")
    with pytest.raises(ValueError, match="missing"):
        Strategy.from_dict({"units": []})
    assert set(UNIT_NAMES) >= {"S", "T", "ST", "ST(2+1)D", "S+T", "S+ST", "T+ST", "S+T+ST", "ip-CSN", "ir-CSN", "2D"}


def test_replace_keeps_the_name_and_validates():
    from workbench import preset

    s = preset("opt", "densenet-tiny")
    t = s.replace(2, "ST")
    assert t.name == "opt" and t.units[2] == "ST" and t.units[:2] == s.units[:2]
    assert s.replace(stem="2D").stem == "2D" and s.replace(stem="2D").units == s.units
    assert s.replace(name="mine").name == "mine"
    with pytest.raises(ValueError, match="no field"):
        s.replace(colour="red")
    with pytest.raises(ValueError, match="together"):
        s.replace(layer=1)
    with pytest.raises(ValueError):
        s.replace(0, "no-such-unit")


def test_unit_branch_algebra_lives_in_one_place():
    from workbench.strategy import branches_of, is_temporal, units_from_branches

    assert branches_of("S+ST") == ("S", "ST") and branches_of("skip") == ()
    assert units_from_branches(["ST", "S"]) == "S+ST" and units_from_branches([]) == "skip"
    for u in ("S", "T", "ST", "S+T", "S+ST", "T+ST", "S+T+ST", "skip"):
        assert units_from_branches(branches_of(u)) == u
    assert is_temporal("S+T") and not is_temporal("S") and not is_temporal("skip")
    with pytest.raises(ValueError, match="unknown template unit"):
        branches_of("S+X")
