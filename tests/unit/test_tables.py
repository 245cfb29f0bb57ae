"""The run table and the strategy table, driven through their Python API and their widgets."""

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from plotly.callbacks import Points  # noqa: E402

from workbench.analysis import best_so_far, estimates_dataset  # noqa: E402
from workbench.plots import best_so_far_plot, layer_importance_bars  # noqa: E402
from workbench.strategy import Strategy  # noqa: E402
from workbench.tables import RunTable, StrategyTable  # noqa: E402

A = ("S", "ST", "S+ST", "S", "ST", "S", "S", "ST")


def _write(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        (folder / f"{name}.json").write_text(obj if isinstance(obj, str) else json.dumps(obj))


def _history(val, gates=True):
    n = len(val)
    h = {"epoch": list(range(1, n + 1)), "phase": ["train"] * n, "lr": [0.1] * n, "train_loss": [1.0] * n,
         "train_reg": [0.0] * n, "train_acc": [0.5] * n, "val_loss": [2.0 - v for v in val], "val_acc": val,
         "seconds": [1.5] * n, "skipped": [0] * n}
    if gates:
        h["gates"] = [[[0.5, 0.5]] * 8] * n
    return h


@pytest.fixture
def runs(tmp_path):
    strat = Strategy("densenet-tiny", A).to_dict()
    _write(tmp_path / "tmpl", run={"kind": "supernet", "dataset": "synthetic-mixed",
                                   "supernet_config": {"backbone": "densenet-tiny"}, "train_config": {"epochs": 4}},
           history=_history([0.2, 0.5, 0.4]), health={"template": [{"problem": "collapsed", "text": "x"}]})
    _write(tmp_path / "sa" / "one", run={"kind": "standalone", "dataset": "synthetic-motion", "strategy": strat,
                                         "train_config": {"epochs": 2}},
           history=_history([0.3, 0.6], gates=False), result={"test": {"top1": 0.55, "loss": 1.0}})
    _write(tmp_path / "streams", run={"kind": "streams", "dataset": "synthetic-mixed", "fusion": "late",
                                      "modalities": ["rgb", "flow"], "train_config": {"epochs": 2}},
           history={"epoch": [0, 1, 2], "seconds": [0.1, 1.0, 1.0], "weights": [{}] * 3,
                    "val_acc": {"rgb": [0.1, 0.2, 0.3], "fused": [0.1, 0.7, 0.65]}, "val_loss": {"fused": [3, 2, 1]}},
           result={"test": {"rgb": {"top1": 0.3}, "fused": {"top1": 0.66}}})
    _write(tmp_path / "broken", run="{not json")
    _write(tmp_path / "tmpl" / "cache" / "x", run={"kind": "standalone"})  # skipped: a cache folder
    _write(tmp_path / ".hidden", run={"kind": "standalone"})  # skipped: hidden
    return tmp_path


def test_run_table_rows_and_corrupt_folder(runs):
    df = RunTable(runs).frame().set_index("path")
    assert sorted(df.index) == ["broken", "sa/one", "streams", "tmpl"]
    assert df.loc["broken", "kind"] == "unreadable" and "not valid JSON" in df.loc["broken", "problem"]
    t = df.loc["tmpl"]
    assert (t["kind"], t["code"], t["epochs"], t["planned"]) == ("template", "densenet-tiny", 3, 4)
    assert not t["finished"]
    assert (t["best_val_top1"], t["last_val_top1"], t["warnings"]) == (0.5, 0.4, 1)
    assert "UNVALIDATED" in t["trust"] and "collapsed" in t["trust"]
    s = df.loc["sa/one"]
    assert s["code"] == Strategy("densenet-tiny", A).code and s["test_top1"] == 0.55 and bool(s["finished"])
    st = df.loc["streams"]
    # the fused head; epoch 0 (before training) is not an epoch done nor a best
    assert (st["epochs"], st["best_val_top1"], st["last_val_top1"], st["test_top1"]) == (2, 0.7, 0.65, 0.66)
    assert st["code"] == "late (rgb+flow)" and st["seconds"] == pytest.approx(2.1)
    assert sorted(RunTable(runs, recursive=False).frame()["path"]) == ["broken", "streams", "tmpl"]
    # a template run writes no result.json: all planned epochs done is finished
    _write(runs / "tmpl", run={"kind": "supernet", "train_config": {"epochs": 3}})
    table = RunTable(runs)
    assert table.frame().set_index("path").loc["tmpl", "finished"]
    (runs / "sa" / "one" / "result.json").write_text("[1, 2")
    row = table.refresh().set_index("path").loc["sa/one"]
    assert np.isnan(row["test_top1"]) and "result.json is not valid JSON" in row["problem"]
    assert row["best_val_top1"] == 0.6  # the other files still count
    with pytest.raises(ValueError, match="not a folder"):
        RunTable(runs / "nothing")


def test_run_table_filters(runs):
    table = RunTable(runs)
    assert list(table.filter(kind="template")["path"]) == ["tmpl"]
    assert sorted(table.filter(dataset="synthetic-mixed")["path"]) == ["streams", "tmpl"]
    assert sorted(table.filter(finished=True)["path"]) == ["sa/one", "streams"]
    assert list(table.filter(text="LATE")["path"]) == ["streams"]  # the code, any case
    assert list(table.filter(text="sa/")["path"]) == ["sa/one"]
    assert list(table.filter(kind="template", finished=True)["path"]) == []
    assert len(table.filter()) == 4


def test_compare_three_runs(runs):
    table = RunTable(runs)
    df = table.compare(["streams", str(runs / "sa" / "one"), "tmpl"])
    assert list(df["path"]) == ["streams", "sa/one", "tmpl"]
    assert list(df["last_val_loss"]) == pytest.approx([1.0, 1.4, 1.6])
    fig = table.compare_figure(["streams", "sa/one", "tmpl"])
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["streams", "sa/one", "tmpl"]
    assert list(ax.lines[0].get_ydata()) == [0.1, 0.7, 0.65]
    legend = ax.get_legend()
    fig.draw_without_rendering()
    assert legend.get_window_extent().y0 >= ax.get_window_extent().y1 - 1  # above the data
    plt.close(fig)
    with pytest.raises(ValueError, match="no run 'nope'"):
        table.compare(["nope"])
    with pytest.raises(ValueError, match="has 'bogus'"):
        table.compare_figure(["tmpl"], "bogus")


def test_run_table_widget(runs):
    table = RunTable(runs)
    box = table.widget()
    assert box.children
    c = table.controls
    assert len(c["runs"].options) == 4 and "broken" in c["table"].value
    c["kind"].value = "template"
    assert [v for _, v in c["runs"].options] == ["tmpl"] and "broken" not in c["table"].value
    c["kind"].value = "(any)"
    c["finished"].value = "finished"
    assert sorted(v for _, v in c["runs"].options) == ["sa/one", "streams"]
    c["runs"].value = ("sa/one", "streams")
    assert table.selected() == ["sa/one", "streams"]
    c["compare"].click()
    assert [line.get_label() for line in table.figure.axes[0].lines] == ["sa/one", "streams"]
    c["text"].value = "late"
    assert table.selected() == ["streams"]


def _estimates():
    s = [Strategy("densenet-tiny", A), Strategy("densenet-tiny", ("ST",) * 8, name="st"),
         Strategy("densenet-tiny", ("S",) * 8), Strategy("densenet-tiny", ("S+ST",) * 8)]
    rows = [(s[0], 0.40, 2.0), (s[2], 0.30, 1.0), (s[0], 0.40, 2.0), (s[3], 0.60, 3.0), (s[0], 0.40, 2.0),
            (s[2], 0.30, 1.0), (s[1], 0.35, 2.5)]
    src = ["sampled"] * 6 + ["preset"]
    return estimates_dataset([{"strategy": st, "top1": a, "gmacs": g * 1e-3, "params": 1000 + i,
                               "log_prob": -float(i), "n_eval": 100} for i, (st, a, g) in enumerate(rows)],
                             sources=src)


def test_strategy_table_merges_sorts_filters():
    t = StrategyTable(_estimates())
    df = t.frame()
    assert list(df["row"]) == [0, 1, 3, 6] and list(df["drawn"]) == [3, 2, 1, 1]
    assert "MMACs" in df.columns and df.loc[3, "MMACs"] == pytest.approx(3.0)
    assert df.loc[0, "top1 95% (evaluation noise)"].startswith("[0.3")
    assert list(df["pareto"]) == [True, True, True, False]  # the preset: more MACs and less top-1 than row 0
    assert list(t.sort("top1")["row"]) == [3, 0, 6, 1]
    assert list(t.sort("gmacs", ascending=True)["row"]) == [1, 0, 6, 3]
    assert list(t.filter(source="sampled")["row"]) == [1, 0, 3]  # the sort stays
    assert list(t.filter(min_top1=0.38)["row"]) == [0, 3]
    assert list(t.filter(max_gmacs=0.0021)["row"]) == [1, 0]
    assert list(t.filter(unit_at={2: "S+ST"})["row"]) == [0, 3]
    assert list(t.filter(unit_at={0: "T"})["row"]) == []
    with pytest.raises(ValueError, match="layer 8 does not exist"):
        t.filter(unit_at={8: "S"})
    with pytest.raises(ValueError, match="unit 'X' is not a unit"):
        t.filter(unit_at={0: "X"})
    with pytest.raises(ValueError, match="cannot sort by 'nope'"):
        t.sort("nope")
    with pytest.raises(ValueError, match="estimates Dataset lacks top1"):
        StrategyTable(_estimates().drop_vars("top1"))


def test_scatter_and_table_are_linked():
    t = StrategyTable(_estimates())
    fig = t.scatter()
    sampled, preset = fig.data[0], fig.data[1]
    assert list(sampled.customdata) == [0, 1, 2, 3, 4, 5] and list(preset.customdata) == [6]
    # points picked on the scatter select table rows (a duplicate draw selects its strategy's row)
    sampled._dispatch_on_selection(Points([2, 3], trace_index=0), None)  # rows 2 and 3: strategies 0 and 3
    assert t.selected() == [0, 3]
    preset._dispatch_on_selection(Points([0], trace_index=1), None)
    assert t.selected() == [0, 3, 6]
    t.on_scatter_selection(sampled, Points([1], trace_index=0))  # a new pick on a trace replaces that trace's part
    assert t.selected() == [6, 1]
    # rows selected in the table highlight every point of those strategies
    t.select([0])
    assert list(sampled.selectedpoints) == [0, 2, 4] and list(preset.selectedpoints) == []
    t.select([])
    assert sampled.selectedpoints is None
    with pytest.raises(ValueError, match="not a strategy row"):
        t.select([99])


def test_export_and_send_to_designer(tmp_path):
    t = StrategyTable(_estimates())
    with pytest.raises(ValueError, match="no designer"):
        t.send_to_designer()
    with pytest.raises(ValueError, match="selection is empty"):
        t.export(tmp_path / "sel")
    t.select([3, 4])
    files = t.export(tmp_path / "sel")
    rows = json.loads(files["json"].read_text())
    assert [r["top1"] for r in rows] == [0.6, 0.4]  # row 4 is a draw of row 0
    assert files["csv"].read_text().splitlines()[0].startswith("top1,")

    class Designer:
        strategy = None

        def set_strategy(self, s):
            self.strategy = s

    d = Designer()
    t2 = StrategyTable(_estimates(), designer=d)
    with pytest.raises(ValueError, match="nothing selected"):
        t2.send_to_designer()
    t2.select([6])
    assert t2.send_to_designer().name == "st" and d.strategy.units == ("ST",) * 8


def test_strategy_widget_controls_update_table(tmp_path):
    t = StrategyTable(_estimates())
    box = t.widget()
    assert box.children
    c = t.controls
    assert [v for _, v in c["rows"].options] == [3, 0, 6, 1]
    c["source"].value = "preset"
    assert [v for _, v in c["rows"].options] == [6] and "densenet-tiny:3333" in c["table"].value
    c["source"].value = "(any)"
    c["sort"].value = "drawn"
    assert [v for _, v in c["rows"].options][:2] == [0, 1]
    c["max_gmacs"].value = "abc"
    assert "take numbers" in c["status"].value
    assert c["max_gmacs"].description == "max MMACs"
    c["max_gmacs"].value = "2.1"  # in the table's unit
    assert sorted(v for _, v in c["rows"].options) == [0, 1]
    c["max_gmacs"].value = ""
    c["layer"].value, c["unit"].value = 0, "ST"
    assert [v for _, v in c["rows"].options] == [6]
    c["layer"].value = "(any)"
    fig = t.scatter()
    c["rows"].value = (1,)
    assert t.selected() == [1] and list(fig.data[0].selectedpoints) == [1, 5]
    c["path"].value = str(tmp_path / "picked")
    c["export"].click()
    assert (tmp_path / "picked.csv").is_file()
    c["send"].click()
    assert "no designer" in c["status"].value


def test_best_so_far_and_importance():
    est = _estimates()
    df = best_so_far(est)
    assert list(df["best"]) == [0.4, 0.4, 0.4, 0.6, 0.6, 0.6]  # sampled rows only, in order
    assert np.all(np.diff(df["best"]) >= 0)
    fig = best_so_far_plot(est)
    assert fig.axes[0].get_xlabel() == "strategies sampled"
    plt.close(fig)
    with pytest.raises(ValueError, match="no sampled strategies"):
        best_so_far(est.isel(strategy=[6]))
    fig = layer_importance_bars(est, min_count=1)
    assert len(fig.axes[0].patches) == 8
    plt.close(fig)
    with pytest.raises(ValueError, match="no layer has two units"):
        layer_importance_bars(est, min_count=10)


def test_imports_no_torch():
    code = "import sys, workbench.tables; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
