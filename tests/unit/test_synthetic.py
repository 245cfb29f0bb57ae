"""The embedded synthetic benchmark: shapes, determinism, splits, knobs, class vocabularies, errors."""

import hashlib

import numpy as np
import pytest
import torch

from workbench.data import build_dataset
from workbench.data.synthetic import (
    DEFAULT_MOTIONS,
    KINDS,
    MEAN,
    MOTION_FAMILIES,
    STD,
    SyntheticConfig,
    SyntheticVideo,
    appearance_classes,
    make_synthetic,
    motion_profiles,
    synthetic_config,
)

NAMES = [f"synthetic-{k}" for k in KINDS]
# every per-frame nuisance off: what is left of a motion clip is its path in some order
CLEAN = {"noise": 0.0, "camera_shake": 0.0, "distractors": 0}
BUSY = {"noise": 0.05, "camera_shake": 0.05, "distractors": 2, "clutter": 0.8, "difficulty": 0.5}


def digests(ds, n=None) -> list[str]:
    return [hashlib.sha256(ds.clip_array(i).tobytes()).hexdigest() for i in range(n or len(ds))]


# -- shapes and dtypes -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("frames,size", [(2, 8), (5, 17), (8, 32), (16, 48), (3, 112)])
def test_shapes_and_dtypes(name, frames, size):
    ds = make_synthetic(name, "val", output="uint8", frames=frames, size=size, val_per_class=1, **BUSY)
    clip, label = ds[0]
    assert clip.dtype == torch.uint8 and clip.shape == (frames, size, size, 3)
    assert isinstance(label, int) and label == 0
    arr = ds.clip_array(len(ds) - 1)
    assert arr.dtype == np.uint8 and arr.shape == (frames, size, size, 3) and arr.flags.c_contiguous
    x, _ = make_synthetic(name, "val", frames=frames, size=size, val_per_class=1, **BUSY)[0]
    assert x.dtype == torch.float32 and x.shape == (3, frames, size, size) and x.is_contiguous()


def test_appearance_allows_single_frames():
    clip, _ = make_synthetic("synthetic-appearance", output="uint8", frames=1)[0]
    assert clip.shape == (1, 32, 32, 3)


@pytest.mark.parametrize("cache", [False, True])
def test_float_output_is_the_documented_normalisation(cache):
    u8 = make_synthetic("synthetic-mixed", "test", output="uint8", test_per_class=2)
    fl = make_synthetic("synthetic-mixed", "test", test_per_class=2, cache=cache)
    for i in range(len(u8)):
        expect = (u8[i][0].permute(3, 0, 1, 2).float() / 255 - MEAN) / STD
        assert torch.allclose(fl[i][0], expect, atol=1e-6)
        assert fl[i][1] == u8[i][1] == u8.label(i)


def test_dataloader_batches():
    ds = make_synthetic("synthetic-motion", train_per_class=4)
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=8)))
    assert x.shape == (8, 3, 8, 32, 32) and y.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]


def test_build_dataset_door_and_pickling():
    ds = build_dataset("synthetic-motion", split="val", output="uint8")
    assert isinstance(ds, SyntheticVideo) and ds.split == "val"
    # a spawned DataLoader worker receives a pickled copy: it must give the same clips
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, [3]), batch_size=1, num_workers=1,
                                         multiprocessing_context="spawn")
    (clip, _), = list(loader)
    assert np.array_equal(clip[0].numpy(), ds.clip_array(3))


# -- determinism and splits ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_byte_identical_for_a_fixed_seed(name):
    a = make_synthetic(name, "train", output="uint8", seed=7, **BUSY)
    b = make_synthetic(name, "train", output="uint8", seed=7, **BUSY)
    assert a is not b and digests(a, 40) == digests(b, 40)
    # a clip does not depend on which clips were made before it, or in which order
    c = make_synthetic(name, "train", output="uint8", seed=7, **BUSY)
    assert [hashlib.sha256(c.clip_array(i).tobytes()).hexdigest() for i in reversed(range(40))] == digests(a, 40)[::-1]


@pytest.mark.parametrize("name", NAMES)
def test_seeds_and_splits_give_different_disjoint_clips(name):
    kw = {"train_per_class": 30, "val_per_class": 30, "test_per_class": 30}
    by_split = {s: digests(make_synthetic(name, s, output="uint8", **kw)) for s in ("train", "val", "test")}
    other_seed = digests(make_synthetic(name, "train", output="uint8", seed=1, **kw))
    for s, d in by_split.items():
        assert len(set(d)) == len(d), f"repeated clips within {s}"
    everything = [d for ds in by_split.values() for d in ds] + other_seed
    assert len(set(everything)) == len(everything)


def test_cache_holds_the_same_bytes_read_only():
    cached = make_synthetic("synthetic-appearance", "val", output="uint8", cache=True)
    plain = make_synthetic("synthetic-appearance", "val", output="uint8")
    assert cached.cached and not plain.cached
    assert np.array_equal(cached.array(), plain.array())
    assert cached.array().shape == (len(plain), 8, 32, 32, 3)
    assert not cached.clip_array(0).flags.writeable
    clip, _ = cached[0]
    clip.zero_()  # what __getitem__ hands out is the caller's to modify
    assert cached.clip_array(0).any()


def test_labels_are_balanced_and_interleaved():
    ds = make_synthetic("synthetic-motion", "test", num_classes=8, test_per_class=5)
    assert len(ds) == 40
    assert ds.labels.tolist() == [i % 8 for i in range(40)] == [ds.label(i) for i in range(40)]
    assert ds.label(-1) == 7
    with pytest.raises(IndexError):
        ds.clip_array(40)


# -- the motion classes differ only in the order of frames -----------------------------------


@pytest.mark.parametrize("frames", [2, 3, 8, 13])
def test_motion_profiles_are_distinct_permutations(frames):
    profiles = motion_profiles(frames)
    perms = list(profiles.values())
    assert len(set(perms)) == len(perms)
    assert all(sorted(p) == list(range(frames)) for p in perms)
    assert profiles["forward"] == tuple(range(frames))
    assert profiles["backward"] == tuple(reversed(range(frames)))
    assert len(perms) == {2: 2, 3: 5, 8: 8, 13: 8}[frames]


@pytest.mark.parametrize("motions", [DEFAULT_MOTIONS, ("translate",), ("rotate",), ("scale",), ("spin",)])
def test_motion_classes_are_reorderings_of_one_clip(motions):
    ds = make_synthetic("synthetic-motion", output="uint8", num_classes=8, motions=motions, **CLEAN)
    perms = list(motion_profiles(8).values())
    for i in range(6):
        forward = ds.render(i, 0)
        for k, perm in enumerate(perms):
            assert np.array_equal(ds.render(i, k), forward[list(perm)]), (i, ds.classes[k])
        assert not np.array_equal(ds.render(i, 1), forward)  # the path does move
    # played backwards, a clip is another class
    assert np.array_equal(ds.render(3, ds.classes.index("backward")), ds.render(3, 0)[::-1])


def test_mixed_classes_share_paths_across_motions():
    ds = make_synthetic("synthetic-mixed", output="uint8", motion_classes=4, num_classes=8, **CLEAN)
    assert ds.classes[:4] == ["red-disk_forward", "red-disk_backward", "red-disk_forward-return",
                              "red-disk_backward-return"]
    for k, perm in enumerate(motion_profiles(8).values()):
        if k < 4:
            assert np.array_equal(ds.render(5, k), ds.render(5, 0)[list(perm)])
    assert not np.array_equal(ds.render(5, 4), ds.render(5, 0))  # another appearance


def test_appearance_label_changes_the_look_not_the_scene():
    ds = make_synthetic("synthetic-appearance", output="uint8", **CLEAN, clutter=0.0)
    a, b = ds.render(2, 0).astype(int), ds.render(2, 3).astype(int)
    assert not np.array_equal(a, b)
    # same background grey (corners are far from the object) in both renderings
    assert np.array_equal(a[:, 0, 0], b[:, 0, 0])


# -- knobs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "knob,value",
    [
        ("noise", 0.1),
        ("clutter", 0.0),
        ("clutter", 1.0),
        ("distractors", 2),
        ("camera_shake", 0.05),
        ("difficulty", 1.0),
        ("motions", ("spin",)),
        ("seed", 3),
    ],
)
def test_every_knob_changes_the_clips(name, knob, value):
    base = make_synthetic(name, output="uint8", clutter=0.3)
    changed = make_synthetic(name, output="uint8", **{"clutter": 0.3, knob: value})
    assert getattr(changed.config, knob) == value
    assert sum(not np.array_equal(base.clip_array(i), changed.clip_array(i)) for i in range(8)) >= 7


def test_structural_knobs_change_the_clips():
    base = make_synthetic("synthetic-motion", output="uint8")
    assert make_synthetic("synthetic-motion", output="uint8", frames=12).clip_array(0).shape[0] == 12
    assert make_synthetic("synthetic-motion", output="uint8", size=40).clip_array(0).shape[1:3] == (40, 40)
    eight = make_synthetic("synthetic-motion", output="uint8", num_classes=8)
    assert len(eight.classes) == 8 and len(eight) == 800 and len(base) == 400
    # appearance: the number of classes decides the looks, so clip i changes with it
    few = make_synthetic("synthetic-appearance", output="uint8", num_classes=6)
    many = make_synthetic("synthetic-appearance", output="uint8", num_classes=40)
    assert not np.array_equal(few.clip_array(7), many.clip_array(7))
    mixed = make_synthetic("synthetic-mixed", output="uint8", motion_classes=3, num_classes=9)
    assert mixed.classes[2] == "red-disk_forward-return"


def test_noise_and_clutter_and_shake_do_what_they_say():
    still = make_synthetic("synthetic-motion", output="uint8", noise=0.0, clutter=0.0, camera_shake=0.0)
    clip = still.clip_array(0).astype(int)
    # no noise, no clutter: the corner pixels are one grey level in every frame
    assert len(np.unique(clip[:, :2, :2])) == 1
    noisy = make_synthetic("synthetic-motion", output="uint8", noise=0.1, clutter=0.0).clip_array(0).astype(int)
    assert noisy[:, :2, :2].std() > 10
    cluttered = make_synthetic("synthetic-motion", output="uint8", noise=0.0, clutter=1.0).clip_array(0).astype(int)
    assert cluttered[0].reshape(-1, 3).std(0).min() > 10
    # the background is static without shake, and moves with it
    static = make_synthetic("synthetic-motion", output="uint8", noise=0.0, clutter=1.0).clip_array(0)
    shaky = make_synthetic("synthetic-motion", output="uint8", noise=0.0, clutter=1.0, camera_shake=0.1).clip_array(0)
    changed = lambda c: (c[1:] != c[:-1]).any(-1).mean()  # noqa: E731
    assert changed(shaky) > 2 * changed(static)


# -- class vocabularies --------------------------------------------------------------------


def test_class_names():
    assert make_synthetic("synthetic-appearance").classes == [
        "red-disk", "green-square", "blue-triangle", "yellow-cross", "magenta-ring", "cyan-bar"]
    assert make_synthetic("synthetic-motion", num_classes=8).classes == [
        "forward", "backward", "forward-return", "backward-return",
        "forward-twice", "backward-twice", "swing-out", "swing-in"]
    assert make_synthetic("synthetic-mixed").classes[:3] == ["red-disk_forward", "red-disk_backward",
                                                             "green-square_forward"]
    big = appearance_classes(108)
    assert big[0] == "red-disk-solid" and big[-1].endswith("-checked")
    for names in (big, appearance_classes(36), make_synthetic("synthetic-mixed", motion_classes=8,
                                                                   num_classes=288).classes):
        assert len(set(names)) == len(names)


def test_config_defaults_presets_and_replace():
    cfg = synthetic_config("synthetic-motion")
    assert cfg.num_classes == 4 and cfg.frames == 8 and cfg.size == 32 and cfg.motions == DEFAULT_MOTIONS
    assert synthetic_config("appearance").num_classes == 6
    assert synthetic_config("synthetic-motion", "standard").size == 112
    cfg2 = cfg.replace(noise=0.0)
    assert cfg2.noise == 0.0 and cfg.noise != 0.0
    with pytest.raises(AttributeError):
        cfg.noise = 0.5  # type: ignore[misc]
    assert SyntheticConfig(kind="motion", motions="scale").motions == ("scale",)
    assert SyntheticConfig(kind="motion", num_classes=np.int64(3)).num_classes == 3
    ds = make_synthetic("synthetic-motion", config=cfg2, seed=5)
    assert ds.config.seed == 5 and ds.config.noise == 0.0


# -- bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: make_synthetic("synthetic-colour"), "synthetic-appearance, synthetic-motion, synthetic-mixed"),
        (lambda: SyntheticConfig(kind="shape"), "appearance, motion, mixed"),
        (lambda: make_synthetic("synthetic-motion", num_classes=9), "2..8"),
        (lambda: make_synthetic("synthetic-motion", frames=2, num_classes=3), "forward, backward"),
        (lambda: make_synthetic("synthetic-appearance", num_classes=109), "2..108"),
        (lambda: make_synthetic("synthetic-mixed", num_classes=100), "2..72"),
        (lambda: make_synthetic("synthetic-motion", num_classes=1), "num_classes"),
        (lambda: make_synthetic("synthetic-motion", frames=1), "frames >= 2"),
        (lambda: make_synthetic("synthetic-mixed", frames=1), "frames >= 2"),
        (lambda: make_synthetic("synthetic-motion", size=4), "size must be an integer in 8..1024"),
        (lambda: make_synthetic("synthetic-motion", split="dev"), "train, val, test"),
        (lambda: make_synthetic("synthetic-motion", output="png"), "float, uint8"),
        (lambda: make_synthetic("synthetic-motion", preset="huge"), "tiny, small, standard"),
        (lambda: make_synthetic("synthetic-motion", colour="red"), "colour"),
        (lambda: make_synthetic("synthetic-motion", noise=-0.1), "noise must be a number in [0.0, 1.0]"),
        (lambda: make_synthetic("synthetic-motion", difficulty=2), "difficulty"),
        (lambda: make_synthetic("synthetic-motion", distractors=-1), "distractors"),
        (lambda: make_synthetic("synthetic-motion", camera_shake=0.9), "camera_shake"),
        (lambda: make_synthetic("synthetic-motion", motions=("wobble",)), ", ".join(MOTION_FAMILIES)),
        (lambda: make_synthetic("synthetic-motion", motions=()), "non-empty"),
        (lambda: make_synthetic("synthetic-mixed", frames=2, motion_classes=3), "forward, backward"),
        (lambda: make_synthetic("synthetic-motion", seed=-1), "seed"),
        (lambda: make_synthetic("synthetic-motion", train_per_class=2.5), "train_per_class"),
        (lambda: make_synthetic("synthetic-motion").render(0, 4), "0..3"),
        (lambda: make_synthetic("synthetic-appearance", config=SyntheticConfig()), "kind 'motion'"),
    ],
)
def test_bad_arguments_name_the_problem(call, message):
    with pytest.raises(ValueError, match=None) as err:
        call()
    assert message in str(err.value)
