"""Export the synthetic benchmark in every real format, check it, load it, break it, check again."""

import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch

from workbench.cli import main
from workbench.data.check import check_dataset
from workbench.data.export import EXPORT_FORMATS, export_dataset, synthetic_source
from workbench.data.formats import index_dataset, make_dataset, make_loader

PER_CLASS, T, S = 3, 8, 32


@pytest.fixture(scope="module")
def source():
    return synthetic_source("synthetic-motion", clips_per_class=PER_CLASS, frames=T, size=S, seed=0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, source):
    out = {}
    for fmt in EXPORT_FORMATS:
        root = tmp_path_factory.mktemp(fmt)
        out[fmt] = export_dataset(fmt, root / "data", source=source, clips_per_class=PER_CLASS)
    return out


def _copy(tmp_path, res):
    dst = tmp_path / res.format
    shutil.copytree(res.root, dst)
    return dst


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_then_check_passes(exported, fmt, capsys):
    res = exported[fmt]
    assert res.files == PER_CLASS * len(res.classes)
    report = check_dataset(fmt, res.root, decode="full")
    assert report.ok, report.format_text()
    assert report.checked == res.files and report.classes == len(res.classes)
    assert main(["data", "check", "--format", fmt, "--root", str(res.root)]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_exported_clips_load_with_the_right_labels(exported, source, fmt):
    res = exported[fmt]
    ds = make_dataset(fmt, res.root, "train", frames=T, transform=None, mode="val")
    assert len(ds) > 0 and not ds.missing and not ds.problems
    originals = np.stack([source.clip_array(i) for i in range(len(source))]).astype(np.float32)
    for i in range(len(ds)):
        clip, label = ds[i]
        assert clip.shape == (T, S, S, 3) and clip.dtype == torch.uint8
        err = np.abs(originals - clip.numpy().astype(np.float32)).mean(axis=(1, 2, 3, 4))
        nearest = int(err.argmin())
        assert err[nearest] < 12, f"{fmt}: decoded clip {i} is far from every source clip"
        # the class the dataset gives is the class the source clip was exported under
        assert ds.classes[label] == res.classes[source.label(nearest)]
    # and the training pipeline runs on it
    train = make_dataset(fmt, res.root, "train", frames=4, stride=2, size=28)
    x, y = next(iter(make_loader(train, batch_size=2, train=True, workers=0)))
    assert x.shape == (2, 3, 4, 28, 28) and x.dtype == torch.float32 and y.shape == (2,)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_corrupt_and_deleted_files_fail_the_check(tmp_path, exported, fmt, capsys):
    root = _copy(tmp_path, exported[fmt])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        entries = index_dataset(
            fmt, root, "train", **({"fold": 1} if fmt in ("ucf101", "hmdb51") else {})
        ).entries
    corrupt, deleted = entries[0].path, entries[1].path
    if corrupt.is_dir():  # Something V1: a frame folder
        (corrupt / "00001.jpg").write_bytes(os.urandom(300))
        shutil.rmtree(deleted)
    else:
        corrupt.write_bytes(os.urandom(300))
        deleted.unlink()
    rc = main(["data", "check", "--format", fmt, "--root", str(root), "--json"])
    assert rc == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    by_kind = {}
    for p in report["problems"]:
        by_kind.setdefault(p["kind"], set()).add(p["path"])
    assert any(str(corrupt) in p for p in by_kind.get("unreadable", ())), report["problems"]
    assert str(deleted) in by_kind.get("missing-file", set()) or fmt == "folder", report["problems"]
    assert set(by_kind) <= {"unreadable", "missing-file"}
    # the text report names them too
    assert main(["data", "check", "--format", fmt, "--root", str(root)]) == 1
    text = capsys.readouterr().out
    assert "FAILED" in text and str(corrupt) in text
    # the dataset still builds, reports the missing entry and skips the corrupt one
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = make_dataset(fmt, root, "train", frames=4, size=28, mode="val")
        items = [ds[i] for i in range(len(ds))]
    assert len(items) == ds.num_videos
    if not corrupt.is_dir():  # (a frame folder only fails when the damaged frame is sampled)
        assert ds.skipped == [str(corrupt)]
    if fmt != "folder":
        assert str(deleted) in ds.missing
        assert any("have no file" in str(w.message) for w in rec)


def test_cli_export_and_bad_roots(tmp_path, capsys):
    out = tmp_path / "ucf"
    assert (
        main(
            [
                "data",
                "export",
                "--dataset",
                "synthetic-motion",
                "--format",
                "ucf101",
                "--out",
                str(out),
                "--clips-per-class",
                "2",
                "--json",
            ]
        )
        == 0
    )
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "ucf101" and info["files"] == 2 * len(info["classes"])
    assert (out / "ucfTrainTestlist" / "trainlist03.txt").is_file()
    # exporting over a non-empty folder needs --force
    assert main(["data", "export", "--format", "ucf101", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "export",
                "--format",
                "ucf101",
                "--out",
                str(out),
                "--force",
                "--clips-per-class",
                "1",
            ]
        )
        == 0
    )
    capsys.readouterr()
    # a root with the wrong layout: exit 1 and the expected layout in the report
    assert main(["data", "check", "--format", "hmdb51", "--root", str(out)]) == 1
    text = capsys.readouterr().out
    assert "testTrainMulti_7030_splits" in text and "[layout]" in text
    assert (
        main(
            ["data", "check", "--format", "kinetics", "--root", str(tmp_path / "absent"), "--json"]
        )
        == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert (
        report["problems"][0]["kind"] == "layout"
        and "does not exist" in report["problems"][0]["detail"]
    )


def test_check_reports_label_mismatch(tmp_path, exported, capsys):
    root = _copy(tmp_path, exported["ucf101"])
    lst = root / "ucfTrainTestlist" / "trainlist01.txt"
    lines = lst.read_text().splitlines()
    rel, lab = lines[0].rsplit(" ", 1)
    lines[0] = f"{rel} {int(lab) % 2 + 1}"
    lst.write_text("\n".join(lines) + "\n")
    assert (
        main(
            [
                "data",
                "check",
                "--format",
                "ucf101",
                "--root",
                str(root),
                "--fold",
                "1",
                "--decode",
                "none",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "label-mismatch" in out and rel in out


def test_a_failed_export_leaves_no_half_dataset(tmp_path, monkeypatch, capsys):
    """A full disk in the middle of an export: one error line, and neither the output folder nor
    a temporary one is left behind."""
    import errno

    import workbench.data.export as ex

    real, calls = ex.write_video, {"n": 0}

    def full(path, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(ex, "write_video", full)
    out = tmp_path / "ucf"
    code = main(["data", "export", "--dataset", "synthetic-motion", "--format", "ucf101", "--out", str(out),
                 "--clips-per-class", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no space left on the device" in err[0], err
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(ex, "write_video", real)
    res = export_dataset("ucf101", out, dataset="synthetic-motion", clips_per_class=2)
    assert res.root == out and all(p.is_file() and out in p.parents for p, _ in res.videos)
    assert [p.name for p in tmp_path.iterdir()] == ["ucf"]


def test_official_split_files_cut_down_to_a_few_classes(tmp_path, exported, capsys):
    """A UCF101 subset as people make it: classInd keeps the original numbers of the classes kept,
    only split 1 is there. It loads with classInd's own numbers, and folds 2 and 3 are reported
    missing only when asked for."""
    root = _copy(tmp_path, exported["ucf101"])
    sdir = root / "ucfTrainTestlist"
    lines = (sdir / "classInd.txt").read_text().split("\n")
    numbered = dict(ln.split(" ", 1)[::-1] for ln in lines if ln.strip())
    keep = sorted(numbered, key=lambda c: int(numbered[c]))[1::2]  # classes 2, 4, ...: not contiguous
    (sdir / "classInd.txt").write_text("".join(f"{numbered[c]} {c}\n" for c in keep))
    for name in ("trainlist01.txt", "testlist01.txt"):
        rows = [r for r in (sdir / name).read_text().splitlines() if r.split("/")[0] in keep]
        (sdir / name).write_text("\n".join(rows) + "\n")
    for f in (2, 3):
        (sdir / f"trainlist0{f}.txt").unlink(missing_ok=True)
        (sdir / f"testlist0{f}.txt").unlink(missing_ok=True)
    idx = index_dataset("ucf101", root, "train")
    assert idx.classes == keep and not idx.problems, idx.problems
    assert {e.label for e in idx.entries} == set(range(len(keep)))
    # a label that names another class than its folder is still caught, in classInd's numbers
    rows = (sdir / "trainlist01.txt").read_text().splitlines()
    rel, _ = rows[0].rsplit(" ", 1)
    (sdir / "trainlist01.txt").write_text("\n".join([f"{rel} {numbered[keep[-1]]}", *rows[1:]]) + "\n")
    bad = index_dataset("ucf101", root, "train")
    assert any(p.kind == "label-mismatch" and f"is class {numbered[keep[0]]}" in p.detail for p in bad.problems)
    (sdir / "trainlist01.txt").write_text("\n".join(rows) + "\n")
    assert main(["data", "check", "--format", "ucf101", "--root", str(root)]) == 0
    capsys.readouterr()
    assert main(["data", "check", "--format", "ucf101", "--root", str(root), "--fold", "2"]) != 0
    assert "trainlist02.txt" in capsys.readouterr().out
