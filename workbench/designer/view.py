"""The designer's ipywidgets: one dropdown per layer, presets, "fill from the marginals", "best
sampled", live parameters, GMACs and the estimate with its interval and the run's trust figure, a
layer-by-layer diff, export and stand-alone training with a progress bar; and the static HTML view
that a notebook exported without a kernel shows."""

from __future__ import annotations

import html
from pathlib import Path

__all__ = ["build_widget", "displayed", "follow_static", "show_static", "static_view", "sync_widgets",
           "training_curves_png"]


def _macs(gmacs: float, css: str | None = None) -> str:
    """Multiply-adds in the unit that fits them (GMACs, or MMACs / KMACs for tiny networks)."""
    from workbench.plots.layout import macs_unit

    factor, unit = macs_unit([gmacs])
    value = f"{gmacs * factor:.4g}"
    return f"{unit} <b class='{css}'>{value}</b>" if css else f"{unit} {value}"


def _macs_change(d_gmacs: float, gmacs: float) -> str:
    """A change of multiply-adds in the unit of the design's own count."""
    from workbench.plots.layout import macs_unit

    factor, unit = macs_unit([gmacs])
    return f"{unit} {d_gmacs * factor:+.4g}"


def build_widget(designer):
    """The designer as an ipywidgets box (display it in a notebook)."""
    import ipywidgets as W

    units = list(designer.template.units)
    layers = [W.Dropdown(options=units, value=u, description=f"layer {i}", layout=W.Layout(width="190px"))
              for i, u in enumerate(designer.strategy.units)]
    preset = W.Dropdown(options=["(preset)"] + list(designer.presets), value="(preset)", description="preset")
    fill = W.Button(description="fill from the marginals", layout=W.Layout(width="auto"))
    best = W.Button(description="best sampled", disabled=designer.estimates is None, layout=W.Layout(width="auto"))
    from workbench.streams.models import FUSIONS

    fusion = W.Dropdown(options=["none", *FUSIONS], value=designer.stream_fusion, description="streams",
                        tooltip="none: the RGB network; else an RGB + optical-flow two-stream network of the design")
    info = W.HTML()
    refs = ["(none)"] + list(designer.presets) + [s.label for s in designer.sampled()[:20]]
    diff_to = W.Dropdown(options=refs, value="(none)", description="diff against")
    diff_out = W.HTML()
    folder = W.Text(value="designs", description="folder")
    export = W.Button(description="export")
    epochs = W.BoundedIntText(value=20, min=1, max=1000, description="epochs")
    train = W.Button(description="train stand-alone", tooltip="while one trains, the next click queues the design")
    cancel = W.Button(description="cancel", tooltip="stop the running training (its folder resumes from the last "
                                                     "finished epoch); queued designs go on")
    bar = W.IntProgress(value=0, min=0, max=1, description="training")
    status = W.HTML()
    queued = W.HTML()
    curves = W.Image(format="png", layout=W.Layout(max_width="720px", display="none"))  # shown with the first epoch
    designer.controls = {"layers": layers, "info": info, "diff_to": diff_to, "diff": diff_out, "preset": preset,
                         "bar": bar, "status": status, "fusion": fusion, "train": train, "cancel": cancel,
                         "epochs": epochs, "folder": folder, "queue": queued, "curves": curves}
    by_label = {**designer.presets, **{s.label: s for s in designer.sampled()[:20]}}

    def refresh(*_):
        follow_static(designer)
        s = designer.summary()
        info.value = (f"<b>{html.escape(s['code'])}</b><br>params <b class='wb-params'>{s['params']:,}</b> | "
                      f"{_macs(s['gmacs'], 'wb-gmacs')} | estimated top-1 "
                      f"<b class='wb-estimate'>{s['estimate']:.3f}</b> "
                      f"<span title='evaluation noise only (95% Wilson interval over the validation clips); "
                      f"the trust figure below says how far shared weights are from stand-alone training'>"
                      f"[{s['estimate_interval'][0]:.3f}, {s['estimate_interval'][1]:.3f}]</span>"
                      f" | log P {s['log_prob']:.1f}<br>"
                      + (f"two-stream ({html.escape(designer.stream_fusion)}, RGB + flow): params "
                         f"<b class='wb-streams-params'>{s['two_stream_params']:,}</b> | "
                         f"{_macs(s['two_stream_gmacs'], 'wb-streams-gmacs')} "
                         "<small>(the estimate is the RGB network's)</small><br>"
                         if designer.stream_fusion != "none" else "")
                      + f"<small>{html.escape(designer.trust)}</small>")
        ref = diff_to.value
        if ref == "(none)":
            diff_out.value = ""
            return
        d = designer.diff(by_label[ref])
        rows = "".join(
            f"<tr style='{'background:#fde0c5' if r['changed'] else ''}'><td>{r['layer']}</td>"
            f"<td>{r['current']}</td><td>{r['reference']}</td></tr>" for r in d["layers"])
        diff_out.value = (f"<table><tr><th>layer</th><th>current</th><th>{html.escape(ref)}</th></tr>{rows}</table>"
                          f"changed layers: {d['changed'] or 'none'}; params {d['d_params']:+,}, "
                          f"{_macs_change(d['d_gmacs'], s['gmacs'])}, estimate {d['d_estimate']:+.3f}")

    def on_layer(change, i):
        if change["new"] != designer.strategy.units[i]:
            designer.set_strategy(designer.strategy.replace(i, change["new"], name=None), sync=False)  # a new design
            if preset.value != "(preset)":
                preset.value = "(preset)"  # the dropdown no longer names what is shown
            refresh()

    for i, dd in enumerate(layers):
        dd.observe(lambda c, i=i: on_layer(c, i), names="value")
    preset.observe(lambda c: c["new"] != "(preset)" and designer.apply_preset(c["new"]), names="value")
    fill.on_click(lambda _: designer.fill_from_marginals())
    best.on_click(lambda _: designer.best_sampled())
    diff_to.observe(refresh, names="value")
    fusion.observe(lambda c: designer.set_stream_fusion(c["new"]), names="value")

    def do_export(_):
        paths = designer.export(folder.value)
        status.value = "exported: " + ", ".join(html.escape(str(p)) for p in paths.values())

    def show_queue() -> None:
        waiting = [j["strategy"].code for j in designer.queue]
        queued.value = ("queued: " + ", ".join(html.escape(c) for c in waiting)) if waiting else ""

    def do_train(_):
        n = epochs.value
        s = designer.strategy
        out = Path(folder.value) / f"train-{s.key}-e{n}"  # trained again at these epochs: resumed or reused
        code = html.escape(s.code)

        def begin() -> None:  # in the training thread, as the job starts
            bar.max, bar.value = n, 0
            bar.description = f"job {len(designer.finished) + 1}/{len(designer.finished) + 1 + len(designer.queue)}"
            status.value = f"training {code} for {n} epochs -> {html.escape(str(out))}"
            show_queue()

        def progress(h):
            bar.value = len(h)
            status.value = f"{code}: epoch {len(h)}/{n}, val top-1 {h.val_acc[-1]:.3f}"
            curves.value = training_curves_png(h)
            curves.layout.display = ""

        def end(r: dict) -> None:
            where = (f"recorded in {html.escape(str(designer.run))}/records.json" if r.get("recorded") else
                     f"NOT recorded: {html.escape(str(r.get('record_error')))}")
            if r.get("reused"):
                status.value = (f"already trained: {code} at these settings in {html.escape(str(out))}: test top-1 "
                                f"{r['test']['top1']:.3f} (recorded when it was trained)")
            elif r["status"] == "cancelled":
                status.value = f"cancelled: {code}; {html.escape(r['cancelled'])}"
            elif r["status"] == "error":
                status.value = f"error training {code}: {html.escape(str(r['error']))}"
            else:
                late = " (the cancel came after its last step)" if r.get("cancel_too_late") else ""
                status.value = (f"done: {code}: test top-1 {r['test']['top1']:.3f} (estimate was "
                                f"{r['estimate'][0]:.3f}); {where}{late}")
            show_queue()

        thread = designer.train(out, epochs=n, on_epoch=progress, queue=True, hooks=(begin, end))
        if thread is None:
            show_queue()
            status.value = (f"queued: {code} starts when {html.escape(designer.training_strategy.code)} ends "
                            f"({len(designer.queue)} waiting)")

    def do_cancel(_):
        running = designer.training_strategy
        if designer.cancel():
            status.value = f"cancelling {html.escape(running.code)}: it stops before its next step"
        else:
            status.value = "nothing is training"

    export.on_click(do_export)
    train.on_click(do_train)
    cancel.on_click(do_cancel)
    refresh()
    grid = W.GridBox(layers, layout=W.Layout(grid_template_columns="repeat(4, 200px)"))
    box = W.VBox([W.HBox([preset, fill, best, fusion]), grid, info, diff_to, diff_out,
                  W.HBox([folder, export]), W.HBox([epochs, train, cancel, bar]), status, queued, curves])
    designer.redraw = refresh
    return box


def training_curves_png(history) -> bytes:
    """A stand-alone training's loss and top-1 curves so far, as PNG bytes."""
    import io

    import matplotlib.pyplot as plt

    from workbench.plots.live import training_curves

    fig = training_curves(history, width="double")
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        return buf.getvalue()
    finally:
        plt.close(fig)


def static_view(designer):
    """The current design as an HTML table (what a static export of the notebook shows)."""
    from IPython.display import HTML

    s = designer.summary()
    rows = "".join(f"<tr><td>{i}</td><td>{u}</td></tr>" for i, u in enumerate(designer.strategy.units))
    return HTML(f"<p><b>{html.escape(s['code'])}</b>: params {s['params']:,}, {_macs(s['gmacs'])}, "
                f"estimated top-1 {s['estimate']:.3f} [{s['estimate_interval'][0]:.3f}, {s['estimate_interval'][1]:.3f}]"
                " (95%, evaluation noise)<br>"
                + (f"two-stream ({html.escape(designer.stream_fusion)}, RGB + flow): params {s['two_stream_params']:,}, "
                   f"{_macs(s['two_stream_gmacs'])}<br>" if designer.stream_fusion != "none" else "")
                + f"<small>{html.escape(designer.trust)}</small></p>"
                f"<table><tr><th>layer</th><th>unit</th></tr>{rows}</table>")


def show_static(designer) -> None:
    """Display the static view of the current design in a slot that follows every change made in
    the widget or from code (a static export of the notebook keeps its last state)."""
    from IPython.display import display

    designer.static_handle = display(static_view(designer), display_id=True)


def follow_static(designer) -> None:
    """Redraw the displayed static view, if one is shown, for the current design."""
    handle = getattr(designer, "static_handle", None)
    if handle is not None:
        handle.update(static_view(designer))


def sync_widgets(designer) -> None:
    if designer.controls is None:
        follow_static(designer)  # no widget, but perhaps a displayed static view
        return
    for dd, u in zip(designer.controls["layers"], designer.strategy.units):
        if dd.value != u:
            dd.value = u
    preset = designer.controls["preset"]
    shown = designer.strategy.name if designer.strategy.name in designer.presets else "(preset)"
    if preset.value != shown:  # the dropdown names the design only while it is that preset
        preset.value = shown
    designer.redraw()


def displayed(designer) -> dict:
    """What the widget shows now (params, GMACs, estimate as displayed text)."""
    import re

    if designer.controls is None:
        raise ValueError("no widget yet: call widget() first")
    text = designer.controls["info"].value
    return {k: re.search(f"class='wb-{k}'>([^<]+)<", text).group(1) for k in ("params", "gmacs", "estimate")}
