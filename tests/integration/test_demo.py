import json

from workbench.cli import main


def test_demo_writes_presets(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "presets_resnet18.json").read_text())
    by = {r["preset"]: r for r in rows}
    assert by["mc3"]["params"] == 11_695_440 and round(by["st"]["gmacs"], 2) == 40.70
