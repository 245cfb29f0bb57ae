"""Known answers of the synthetic benchmark; each test is a real (small) training run.

1. A frame-level model - 2D convolutions on every frame, time fused only by the final average
   pooling (the zoo's ``f-r2d`` strategy) - reads ``synthetic-appearance``: >= 90% on the test split.
2. The same model on ``synthetic-motion`` stays at chance: on 800 test clips a one-sided binomial
   test at the 1% level does not reject chance, although the model memorises part of its
   training set (there the same test does reject chance).
3. A small 3D model (the zoo's ``r3d`` strategy) reads ``synthetic-motion``: >= 80%.

Both models are 10-layer tiny ResNets (``resnet10``; base width 16 for the frame-level model,
8 for the 3D one). The motion runs use all 8 motion profiles. Seeds are fixed; each test prints
its accuracy and wall time.
"""

import time

import pytest
import torch
from helpers_training import ClipTensors, clip_tensors, evaluate, fit
from scipy.stats import binomtest

from workbench.data.synthetic import make_synthetic
from workbench.models import build_model

pytestmark = pytest.mark.slow

SEED = 0
MOTION = {"num_classes": 8, "train_per_class": 200, "test_per_class": 100, "seed": SEED}
APPEARANCE = {"num_classes": 6, "train_per_class": 100, "test_per_class": 50, "seed": SEED}


def frame_level_model(num_classes: int):
    # base width 16, not the tiny 8: with 8 stem channels some seeds leave a colour unlearnt
    return build_model("f-r2d", backbone="resnet10", tiny=True, base_width=16, num_classes=num_classes)


def spatiotemporal_model(num_classes: int):
    return build_model("r3d", backbone="resnet10", tiny=True, num_classes=num_classes)


def splits(name: str, **kw) -> tuple[ClipTensors, ClipTensors]:
    return clip_tensors(make_synthetic(name, "train", **kw)), clip_tensors(make_synthetic(name, "test", **kw))


@pytest.fixture(scope="module")
def motion() -> tuple[ClipTensors, ClipTensors]:
    start = time.perf_counter()
    data = splits("synthetic-motion", **MOTION)
    print(f"\nsynthetic-motion: {len(data[0])} + {len(data[1])} clips rendered in {time.perf_counter() - start:.1f} s")
    return data


def report(record_property, what: str, correct: int, n: int, seconds: float, train_accuracy: float) -> None:
    print(f"\n{what}: test accuracy {correct / n:.3f} ({correct}/{n}), final train accuracy "
          f"{train_accuracy:.3f}, {seconds:.1f} s")
    record_property("test_accuracy", correct / n)
    record_property("seconds", round(seconds, 1))


@torch.no_grad()
def time_order_matters(model, clips: torch.Tensor) -> bool:
    model.eval()
    shuffled = clips[:, :, torch.randperm(clips.shape[2], generator=torch.Generator().manual_seed(1))]
    return not torch.allclose(model(clips), model(shuffled), atol=1e-4)


def test_frame_level_model_reads_appearance(record_property):
    start = time.perf_counter()
    train, test = splits("synthetic-appearance", **APPEARANCE)
    torch.manual_seed(SEED)
    model = frame_level_model(train.num_classes)
    result = fit(model, train, epochs=6, seed=SEED)
    correct, n = evaluate(model, test)
    report(record_property, "f-r2d on synthetic-appearance", correct, n, time.perf_counter() - start,
           result.history[-1]["train_accuracy"])
    assert correct / n >= 0.90


def test_frame_level_model_is_at_chance_on_motion(motion, record_property):
    start = time.perf_counter()
    train, test = motion
    torch.manual_seed(SEED)
    model = frame_level_model(train.num_classes)
    result = fit(model, train, epochs=6, seed=SEED)
    # the probe is truly orderless: shuffling the frames of a clip leaves its logits unchanged
    assert not time_order_matters(model, test.batch(torch.arange(8))[0])
    correct, n = evaluate(model, test)
    report(record_property, "f-r2d on synthetic-motion", correct, n, time.perf_counter() - start,
           result.history[-1]["train_accuracy"])
    assert n >= 800
    p_value = binomtest(correct, n, 1 / train.num_classes, alternative="greater").pvalue
    record_property("p_value", p_value)
    print(f"one-sided binomial test against chance 1/{train.num_classes}: p = {p_value:.3g}")
    assert p_value > 0.01, f"a frame-level model beats chance on motion ({correct}/{n}): frames leak the class"
    # and not because it learnt nothing: it memorises part of its training set
    fitted, seen = evaluate(model, train)
    print(f"on its own training clips: {fitted}/{seen}")
    assert binomtest(fitted, seen, 1 / train.num_classes, alternative="greater").pvalue < 0.01


def test_3d_model_reads_motion(motion, record_property):
    start = time.perf_counter()
    train, test = motion
    torch.manual_seed(SEED)
    model = spatiotemporal_model(train.num_classes)
    result = fit(model, train, epochs=8, seed=SEED)
    assert time_order_matters(model, test.batch(torch.arange(8))[0])
    correct, n = evaluate(model, test)
    report(record_property, "r3d on synthetic-motion", correct, n, time.perf_counter() - start,
           result.history[-1]["train_accuracy"])
    assert correct / n >= 0.80
