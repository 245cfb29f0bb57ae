"""Loaders of the real dataset formats on tiny fixtures written here from the synthetic benchmark.

Each fixture reproduces the distributed layout and the quirks documented for it (CRLF lines,
1-based labels, class order that is not sorted(), names with odd characters, missing videos...).
"""

import csv
import json
import os
import warnings

import numpy as np
import pytest
import torch

from workbench.data import build_dataset
from workbench.data.decode import DecodeError, decode_video, list_frames, probe_video, read_clips
from workbench.data.export import write_frames, write_video
from workbench.data.formats import (
    SkippedVideoWarning,
    average_scores_per_video,
    collate_drop_none,
    index_hmdb51,
    index_kinetics,
    index_ucf101,
    make_dataset,
    make_loader,
)
from workbench.data.sampling import ClipSampler, center_indices, train_indices, uniform_indices
from workbench.data.synthetic import make_synthetic

T, S = 8, 32


@pytest.fixture(scope="module")
def clips():
    ds = make_synthetic(
        "synthetic-motion", split="train", output="uint8", frames=T, size=S, train_per_class=3
    )
    return [ds.clip_array(i) for i in range(len(ds))]


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


# -- UCF101 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ucf(tmp_path_factory, clips):
    root = tmp_path_factory.mktemp("ucf")
    # classInd order is case-insensitive alphabetical: sorted() would swap the first two
    classes = ["Hammering", "HammerThrow", "HandstandPushups"]
    stems = {
        "Hammering": "Hammering",
        "HammerThrow": "HammerThrow",
        "HandstandPushups": "HandStandPushups",
    }
    sdir = root / "ucfTrainTestlist"
    sdir.mkdir()
    (sdir / "classInd.txt").write_bytes(
        "".join(f"{k + 1} {c}\r\n" for k, c in enumerate(classes)).encode()
    )
    train, test = [], []
    for k, c in enumerate(classes):
        for g in (1, 8):  # g01 is a test group of split 1
            rel = f"{c}/v_{stems[c]}_g{g:02d}_c01.avi"
            write_video(root / "UCF-101" / rel, clips[k + 4 * (g == 8)], codec="mpeg4", fps=25)
            (test if g == 1 else train).append(rel)
    lines = [f"{r} {classes.index(r.split('/')[0]) + 1}\r\n" for r in train]
    lines.append("HammerThrow/v_HammerThrow_g09_c01.avi 2\r\n")  # listed, no file
    (sdir / "trainlist01.txt").write_bytes("".join(lines).encode())
    (sdir / "testlist01.txt").write_bytes("".join(f"{r}\r\n" for r in test).encode())
    return root, classes


def test_ucf101_classes_labels_and_missing(ucf):
    root, classes = ucf
    with pytest.warns(UserWarning, match="1 of 4 entries .* have no file"):
        ds = make_dataset("ucf101", root, "train", frames=4, size=28)
    assert ds.classes == classes  # classInd order, not sorted()
    assert [e.label for e in ds.entries] == [0, 1, 2]
    assert ds.missing == [str(root / "UCF-101" / "HammerThrow/v_HammerThrow_g09_c01.avi")]
    clip, label = ds[2]
    assert clip.shape == (3, 4, 28, 28) and clip.dtype == torch.float32 and label == 2


def test_ucf101_test_list_labels_come_from_the_folder(ucf):
    root, classes = ucf
    idx = index_ucf101(root, "test", fold=1)
    assert [(e.key.split("/")[0], e.label) for e in idx.entries] == [
        (c, k) for k, c in enumerate(classes)
    ]
    # the HandStandPushups file stem is not used to find the class
    assert idx.entries[2].path.name == "v_HandStandPushups_g01_c01.avi"
    assert not idx.problems


def test_ucf101_label_mismatch_is_reported(tmp_path, ucf):
    root, _ = ucf
    sdir = tmp_path / "lists"
    sdir.mkdir()
    (sdir / "classInd.txt").write_text((root / "ucfTrainTestlist" / "classInd.txt").read_text())
    (sdir / "trainlist01.txt").write_text(
        "Hammering/v_Hammering_g08_c01.avi 3\nNoSuchClass/v_NoSuchClass_g01_c01.avi 1\n"
    )
    idx = index_ucf101(root, "train", split_dir=sdir)
    kinds = sorted(p.kind for p in idx.problems)
    assert kinds == ["label-mismatch", "unknown-class"]
    assert idx.entries[0].label == 0  # the folder wins


def test_ucf101_missing_root_and_missing_lists(tmp_path):
    with pytest.raises(ValueError, match="(?s)does not exist; expected layout:.*classInd.txt"):
        make_dataset("ucf101", tmp_path / "nope")
    with pytest.raises(ValueError, match="has no ucfTrainTestlist/classInd.txt; expected layout"):
        make_dataset("ucf101", tmp_path)
    with pytest.raises(ValueError, match="root None was not given"):
        build_dataset("ucf101")
    with pytest.raises(ValueError, match="fold must be 1, 2 or 3"):
        index_ucf101(tmp_path, fold=4)


# -- HMDB51 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hmdb(tmp_path_factory, clips):
    root = tmp_path_factory.mktemp("hmdb")
    sdir = root / "testTrainMulti_7030_splits"
    sdir.mkdir()
    classes = ["climb_stairs", "climb"]  # sorting file names would put climb_stairs first
    names = {
        "climb": [
            "(Rad)Schlag_die_Bank!_climb_f_cm_np1_le_med_0.avi",
            "a_climb_u_nm_np1_ba_goo_0.avi",
            "b_climb_u_nm_np1_ba_goo_1.avi",
        ],
        "climb_stairs": [
            "x_climb_stairs_f_cm_np1_fr_med_0.avi",
            "y_climb_stairs_f_cm_np1_fr_med_1.avi",
            "z_climb_stairs_f_cm_np1_fr_med_2.avi",
        ],
    }
    k = 0
    for c in classes:
        for n in names[c]:
            write_video(root / "hmdb51_org" / c / n, clips[k], codec="mpeg4", fps=30)
            k += 1
        tags = ["1", "2", "0"]
        (sdir / f"{c}_test_split1.txt").write_text(
            "".join(f"{n} {t} \n" for n, t in zip(names[c], tags))
        )
    return root, names


def test_hmdb51_tags_classes_and_odd_names(hmdb):
    root, names = hmdb
    tr = make_dataset("hmdb51", root, "train", frames=4, size=28)
    te = make_dataset("hmdb51", root, "test", mode="val", frames=4, size=28)
    assert tr.classes == ["climb", "climb_stairs"]
    assert [(e.key, e.label) for e in tr.entries] == [
        (names["climb"][0], 0),
        (names["climb_stairs"][0], 1),
    ]
    assert [e.key for e in te.entries] == [
        names["climb"][1],
        names["climb_stairs"][1],
    ]  # tag 0 unused
    clip, label = tr[0]
    assert clip.shape == (3, 4, 28, 28) and label == 0


def test_hmdb51_finds_a_video_by_name_and_reports_the_folder(tmp_path, hmdb, clips):
    root, names = hmdb
    (tmp_path / "testTrainMulti_7030_splits").mkdir()
    (tmp_path / "testTrainMulti_7030_splits" / "wave_test_split2.txt").write_text(
        "w_wave_f_cm_np1_fr_med_0.avi 1\n"
    )
    write_video(
        tmp_path / "videos" / "other" / "w_wave_f_cm_np1_fr_med_0.avi",
        clips[0],
        codec="mpeg4",
        fps=30,
    )
    idx = index_hmdb51(tmp_path, "train", fold=2)
    assert len(idx.entries) == 1 and idx.entries[0].path.parent.name == "other"
    assert [p.kind for p in idx.problems] == ["label-mismatch"]
    with pytest.raises(ValueError, match="_test_split1.txt' files"):
        index_hmdb51(tmp_path, "train", fold=1)


# -- Something-Something V1 -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ssv1(tmp_path_factory, clips):
    root = tmp_path_factory.mktemp("ssv1")
    classes = [
        "Holding something",
        "Putting something, something and something on the table",
        "Moving something up",
    ]
    (root / "something-something-v1-labels.csv").write_text("".join(f"{c}\n" for c in classes))
    rows = {"train": [], "validation": [], "test": []}
    for vid in range(1, 7):
        write_frames(root / "20bn-something-something-v1" / str(vid), clips[vid])
        split = "train" if vid <= 3 else ("validation" if vid <= 5 else "test")
        rows[split].append(f"{vid}" if split == "test" else f"{vid};{classes[vid % 3]}")
    rows["train"].append("99;Holding something")  # no frame folder
    for s, r in rows.items():
        (root / f"something-something-v1-{s}.csv").write_text("\n".join(r) + "\n")
    return root, classes


def test_something_v1_frames_labels_and_no_flip(ssv1, clips):
    root, classes = ssv1
    with pytest.warns(UserWarning, match="1 of 4 entries"):
        ds = make_dataset("something-v1", root, "train", frames=T, transform=None)
    assert ds.classes == classes and ds.flip is False
    assert [e.label for e in ds.entries] == [1, 2, 0]  # 0-based line numbers; comma in a class name
    clip, label = ds[0]
    assert clip.shape == (T, S, S, 3) and clip.dtype == torch.uint8 and label == 1
    err = [np.abs(clip.numpy().astype(int) - c.astype(int)).mean() for c in clips[:3]]
    assert err[1] < 12 and err[1] < min(err[0], err[2]) / 2  # JPEG is lossy, but it is clip 1
    test = make_dataset("something-v1", root, "test", num_clips=2, num_crops=1, frames=4, size=28)
    assert [e.label for e in test.entries] == [-1] and len(test) == 2
    assert test.transform.flip is False


def test_frame_folder_listing_ignores_flow_and_sorts_numerically(tmp_path, clips):
    d = tmp_path / "v"
    write_frames(d, clips[0][:3], pattern="img_{:05d}.jpg")
    write_frames(d, clips[0][:2], pattern="flow_x_{:05d}.jpg")
    (d / "img_00010.jpg").write_bytes((d / "img_00001.jpg").read_bytes())
    assert [p.name for p in list_frames(d)] == [
        "img_00001.jpg",
        "img_00002.jpg",
        "img_00003.jpg",
        "img_00010.jpg",
    ]


# -- Something-Something V2 -----------------------------------------------------------------------


def _ssv2(root, clips, qualcomm=False):
    classes = [
        "Approaching something with your camera",
        "Holding something next to something",
        "Something falling like a feather or paper",
    ]
    labels = {c: str(k) for k, c in enumerate(classes)}
    templates = [
        "Approaching [something] with your camera",
        "Holding [something] next to [something]",
        "[Something] falling like a feather or paper",
    ]
    vdir = root / "20bn-something-something-v2"
    train, val = [], []
    for k in range(5):
        vid = str(1420 + k)
        write_video(vdir / f"{vid}.webm", clips[k], codec="libvpx-vp9", fps=12)
        row = {
            "id": vid,
            "label": "a caption, not the class",
            "template": templates[k % 3],
            "placeholders": ["x"],
        }
        (train if k < 3 else val).append(row)
    test = [{"id": "1425"}]
    write_video(vdir / "1425.webm", clips[5], codec="libvpx-vp9", fps=12)
    files = {"labels": labels, "train": train, "validation": val, "test": test}
    for name, data in files.items():
        path = (
            root / "labels" / f"{name}.json"
            if qualcomm
            else root / f"something-something-v2-{name}.json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    if qualcomm:
        (root / "labels" / "test-answers.csv").write_text(f"1425;{classes[2]}\n")
    return classes


@pytest.mark.parametrize("qualcomm", [False, True], ids=["20bn-names", "labels-folder"])
def test_something_v2_templates_and_test_answers(tmp_path, clips, qualcomm):
    classes = _ssv2(tmp_path, clips, qualcomm)
    ds = make_dataset("something-v2", tmp_path, "train", frames=T, size=28, mode="val")
    assert ds.classes == classes
    assert [e.label for e in ds.entries] == [0, 1, 2]
    clip, label = ds[2]
    assert clip.shape == (3, T, 28, 28) and label == 2
    test = make_dataset("something-v2", tmp_path, "test", transform=None)
    assert [e.label for e in test.entries] == [2 if qualcomm else -1]


def test_something_v2_unknown_template_is_a_problem(tmp_path, clips):
    _ssv2(tmp_path, clips)
    rows = json.loads((tmp_path / "something-something-v2-validation.json").read_text())
    rows[0]["template"] = "Juggling [something]"
    (tmp_path / "something-something-v2-validation.json").write_text(json.dumps(rows))
    with pytest.warns(UserWarning, match="unknown-class"):
        ds = make_dataset("something-v2", tmp_path, "val")
    assert len(ds.entries) == 1 and ds.problems[0].kind == "unknown-class"


# -- Kinetics -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory, clips):
    root = tmp_path_factory.mktemp("k400")
    labels = ["air drumming", "passing American football (in game)", "massaging person's head"]
    ids = ["--6bJUbfpnQ", "0wR5jVB-WPk", "_dbcJuKJQNs", "abc_def-123"]
    rows = [[labels[k % 3], ids[k], 10 * k, 10 * k + 10, "train", 0] for k in range(4)]
    # mmaction-style class folders with spaces turned into '_'; one row has no file
    for k, (lab, yid, s, e, _, _) in enumerate(rows[:3]):
        write_video(
            root / "train" / lab.replace(" ", "_") / f"{yid}_{s:06d}_{e:06d}.mp4",
            clips[k],
            codec="libx264",
            fps=30,
        )
    (root / "annotations").mkdir()
    with open(root / "annotations" / "train.csv", "w", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
        w.writerows(rows)
    # an old-style test CSV: no label, float times, flat folder
    (root / "annotations" / "test.csv").write_text(
        "youtube_id,time_start,time_end,split\n--65_UAU7ao,0.0,10.0,test\n"
    )
    write_video(root / "test" / "--65_UAU7ao_000000_000010.mp4", clips[3], codec="libx264", fps=30)
    return root, sorted(labels)


def test_kinetics_csv_ids_class_folders_and_missing_rows(kinetics):
    root, classes = kinetics
    with pytest.warns(UserWarning, match="1 of 4 entries"):
        ds = make_dataset("kinetics-400", root, "train", frames=4, size=28)
    assert ds.classes == classes and ds.name == "kinetics-400/train"
    assert [e.key[:11] for e in ds.entries] == ["--6bJUbfpnQ", "0wR5jVB-WPk", "_dbcJuKJQNs"]
    assert [ds.classes[e.label] for e in ds.entries] == [
        "air drumming",
        "passing American football (in game)",
        "massaging person's head",
    ]
    assert ds.missing[0].endswith("abc_def-123_000030_000040.mp4")
    clip, label = ds[1]
    assert clip.shape == (3, 4, 28, 28) and label == classes.index(
        "passing American football (in game)"
    )


def test_kinetics_unlabelled_test_csv_and_replacements(kinetics, tmp_path, clips):
    root, classes = kinetics
    test = make_dataset("kinetics-700", root, "test", transform=None)
    assert test.classes == classes  # from the train CSV
    assert [(e.key, e.label) for e in test.entries] == [("--65_UAU7ao_000000_000010", -1)]
    repl = root / "replacement" / "replacement_for_corrupted_k400"
    write_video(repl / "--65_UAU7ao_000000_000010.mp4", clips[4], codec="libx264", fps=30)
    try:
        assert index_kinetics(root, "test").entries[0].path.parent == repl
    finally:
        for p in repl.iterdir():
            p.unlink()
    with pytest.raises(ValueError, match="has no val CSV"):
        make_dataset("kinetics-600", root, "val")


# -- generic folder -------------------------------------------------------------------------------


def test_folder_of_classes_with_videos_and_frame_folders(tmp_path, clips):
    write_video(tmp_path / "wave" / "a.mp4", clips[0], codec="libx264", fps=25)
    write_frames(tmp_path / "wave" / "b_frames", clips[1])
    write_video(tmp_path / "clap" / "c.avi", clips[2], codec="mpeg4", fps=25)
    (tmp_path / "clap" / ".DS_Store").write_text("x")
    (tmp_path / ".hidden").mkdir()
    ds = make_dataset("folder", tmp_path, "train", frames=4, size=28, mode="val")
    assert ds.classes == ["clap", "wave"]
    assert [(e.key, e.label) for e in ds.entries] == [
        ("clap/c.avi", 0),
        ("wave/a.mp4", 1),
        ("wave/b_frames", 1),
    ]
    assert all(ds[i][0].shape == (3, 4, 28, 28) for i in range(3))
    with pytest.raises(ValueError, match="has no class sub-folders"):
        make_dataset("folder", tmp_path / ".hidden")


# -- bad input: skipping unreadable videos --------------------------------------------------------


@pytest.fixture()
def folder_with_bad(tmp_path, clips):
    for k in range(4):
        write_video(tmp_path / f"c{k % 2}" / f"v{k}.mp4", clips[k], codec="libx264", fps=25)
    good = (tmp_path / "c0" / "v0.mp4").read_bytes()
    (tmp_path / "c0" / "v2.mp4").write_bytes(good[: len(good) // 3])  # truncated
    (tmp_path / "c1" / "v1.mp4").write_bytes(b"")  # empty
    (tmp_path / "c1" / "v5.avi").write_bytes(os.urandom(500))  # garbage
    return tmp_path


def test_unreadable_videos_are_skipped_warned_and_counted(folder_with_bad):
    ds = make_dataset("folder", folder_with_bad, "train", frames=4, size=28, mode="val")
    assert ds.num_videos == 5
    with pytest.warns(SkippedVideoWarning) as rec:
        items = [ds[i] for i in range(len(ds))]
    assert len(rec) == 3  # once per file
    assert all(x[0].shape == (3, 4, 28, 28) for x in items)  # the epoch goes on
    assert sorted(os.path.basename(p) for p in ds.skipped) == ["v1.mp4", "v2.mp4", "v5.avi"]
    summary = ds.skip_summary()
    assert "skipped 3 of 5 videos" in summary and "v5.avi" in summary
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[1]  # no second warning for the same file
    assert ds.summary()["skipped"].keys() == set(ds.skipped)


def test_drop_policy_and_collate(folder_with_bad):
    ds = _quiet(
        make_dataset, "folder", folder_with_bad, "train", frames=4, size=28, on_error="drop"
    )
    items = _quiet(lambda: [ds[i] for i in range(len(ds))])
    assert sum(x is None for x in items) == 3
    batch = collate_drop_none(items)
    assert batch[0].shape == (2, 3, 4, 28, 28)
    assert collate_drop_none([None, None]) is None


def test_loader_with_a_worker_reports_skips_from_the_worker(folder_with_bad):
    ds = make_dataset("folder", folder_with_bad, "train", frames=4, size=28, mode="val")
    loader = make_loader(ds, batch_size=2, train=False, workers=1)
    assert loader.pin_memory == torch.cuda.is_available()
    with pytest.warns(SkippedVideoWarning, match="epoch done; 3 newly skipped"):
        batches = list(loader)
    assert sum(b[0].shape[0] for b in batches) == 5
    assert len(ds.skipped) == 3  # recorded in the worker, seen here
    train_loader = make_loader(ds, batch_size=2, train=True, workers=0)
    assert train_loader.drop_last and len(train_loader) == 2


def test_empty_dataset_and_all_unreadable(tmp_path):
    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match="no entry"):
        make_dataset("folder", tmp_path)
    (tmp_path / "c" / "x.mp4").write_bytes(b"not a video")
    ds = make_dataset("folder", tmp_path)
    with (
        pytest.warns(SkippedVideoWarning),
        pytest.raises(ValueError, match="none of the 1 videos could be read"),
    ):
        ds[0]


# -- test mode: views per video and score averaging -----------------------------------------------


def test_test_mode_views_and_indices(ucf):
    root, _ = ucf
    ds = make_dataset(
        "ucf101", root, "test", frames=4, size=24, short_side=32, num_clips=2, num_crops=3
    )
    assert ds.views == 6 and len(ds) == 18
    items = [ds[i] for i in range(len(ds))]
    assert [v for _, _, v in items] == [i // 6 for i in range(18)]
    assert [y for _, y, _ in items] == [i // 6 for i in range(18)]
    crops = torch.stack([x for x, _, _ in items[:3]])
    assert not torch.equal(crops[0], crops[2])  # left and right crops differ
    loader = make_loader(ds, batch_size=4, train=False, workers=0)
    scores, vids = [], []
    for x, _y, v in loader:
        scores.append(x.mean(dim=(2, 3, 4)))
        vids.append(v)
    ids, avg = average_scores_per_video(torch.cat(scores), torch.cat(vids))
    assert ids.tolist() == [0, 1, 2] and avg.shape == (3, 3)


def test_average_scores_per_video():
    scores = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [10.0, 10.0]])
    ids, avg = average_scores_per_video(scores, [2, 2, 0, 0])
    assert ids.tolist() == [0, 2]
    assert torch.allclose(avg, torch.tensor([[5.0, 7.0], [2.0, 1.0]]))
    ids, avg = average_scores_per_video(scores.numpy(), np.array([0, 0, 2, 2]), num_videos=3)
    assert torch.isnan(avg[1]).all() and torch.allclose(avg[0], torch.tensor([2.0, 1.0]))
    with pytest.raises(ValueError, match="one video id per row"):
        average_scores_per_video(scores, [0, 1])


# -- sampling and decoding ------------------------------------------------------------------------


def test_sampling_modes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = train_indices(100, 8, 4, rng)
        assert len(idx) == 8 and (np.diff(idx) == 4).all() and 0 <= idx[0] and idx[-1] < 100
    assert center_indices(100, 8, 2).tolist() == list(range(42, 57, 2))
    assert center_indices(5, 4, 3).tolist() == [0, 3, 4, 4]  # too short: the last frame repeats
    clips = uniform_indices(100, 8, 2, 3)
    assert [c[0] for c in clips] == [0, 42, 85] and clips[-1][-1] == 99
    assert uniform_indices(100, 8, 2, 1)[0].tolist() == center_indices(100, 8, 2).tolist()
    assert len(ClipSampler("test", 8, 2, 5)(50)) == 5
    with pytest.raises(ValueError, match="sampling mode"):
        ClipSampler("eval")


def test_training_offsets_follow_torch_seed():
    torch.manual_seed(1)
    a = [train_indices(200, 4, 1)[0] for _ in range(5)]
    torch.manual_seed(1)
    b = [train_indices(200, 4, 1)[0] for _ in range(5)]
    assert a == b and len(set(a)) > 1


def test_decode_webm_without_frame_count_and_short_side(tmp_path, clips):
    p = write_video(tmp_path / "a.webm", clips[0], codec="libvpx-vp9", fps=12)
    info = probe_video(p, decode="full")
    assert info.num_frames == T and info.codec == "vp9" and info.exact
    full = decode_video(p)
    assert full.shape == (T, S, S, 3)
    two = read_clips(p, lambda n: [np.array([0, n - 1]), np.array([3, 3])], short_side=16)
    assert [c.shape for c in two] == [(2, 16, 16, 3), (2, 16, 16, 3)]
    # asking beyond the end clamps to the last frame
    assert decode_video(p, [0, 50]).shape == (2, S, S, 3)


def test_decode_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(100))
    for path, msg in [
        (bad, "not a readable video"),
        (tmp_path / "none.mp4", "no such file"),
        (tmp_path / "d", "no such file"),
    ]:
        with pytest.raises(DecodeError, match=msg) as e:
            read_clips(path, lambda n: [np.arange(2)])
        assert str(path) in str(e.value)
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        probe_video(tmp_path / "empty.avi")


def test_training_counts_skipped_videos_per_epoch_and_in_total(folder_with_bad, capsys):
    """The count reaches the history (per epoch), a summary line on stdout, and the history dataset."""
    from workbench.analysis import history_dataset
    from workbench.engine.loop import History, TrainConfig, train
    from workbench.models import build_model
    from workbench.strategy import preset

    ds = make_dataset("folder", folder_with_bad, "train", frames=4, size=28, mode="val")
    model = build_model(preset("mc3"), tiny=True, num_classes=2)
    with pytest.warns(SkippedVideoWarning):
        h = train(model, ds, None, TrainConfig(epochs=2, batch_size=2, progress=False))
    assert h.skipped == [3, 0]  # each unreadable file is skipped once, in the epoch that first met it
    assert "skipped 3 unreadable video(s) (3 in this run so far)" in capsys.readouterr().out
    assert history_dataset(h)["skipped_videos"].values.tolist() == [3, 0]
    old = {k: v for k, v in h.to_dict().items() if k != "skipped"}  # a history written before counting
    assert History.from_dict(old).skipped == [0, 0]


def test_skipped_videos_are_found_through_subsets_and_rgb_flow_pairs(folder_with_bad):
    import torch.utils.data as tud

    from workbench.engine.loop import skipped_videos

    ds = make_dataset("folder", folder_with_bad, "train", frames=4, size=28, mode="val")
    _quiet(lambda: [ds[i] for i in range(len(ds))])

    class Pair:  # what FlowVideoDataset holds: the RGB dataset as .rgb
        rgb = ds

    assert len(skipped_videos(tud.Subset(ds, [0]))) == 3 and len(skipped_videos(Pair())) == 3
    assert sum(len(skipped_videos(d)) for d in (Pair(), tud.Subset(ds, [1]))) == 6
    assert skipped_videos(object()) == []
