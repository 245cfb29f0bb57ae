import os

import pytest

torch = pytest.importorskip("torch")

# Two cores: keep intra-op threads modest and results deterministic.
torch.set_num_threads(int(os.environ.get("WORKBENCH_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_clips(n: int, classes: int = 3, *, frames: int = 4, size: int = 32, seed: int = 0):
    """``n`` random float clips (3 x frames x size x size) with labels in ``0..classes-1``, the
    same for the same arguments: the tiny data of the unit tests that train or score a template."""
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, frames, size, size, generator=g), torch.randint(0, classes, (n,), generator=g))


@pytest.fixture(scope="module")
def clips12():
    """Twelve random clips of three classes (:func:`random_clips`)."""
    return random_clips(12)


@pytest.fixture(scope="module")
def clips16():
    """Sixteen random clips of three classes (:func:`random_clips`)."""
    return random_clips(16)


OPT_IN = {"faults": "real kill -9 loops; run with `pytest -m faults`"}


def pytest_collection_modifyitems(config, items):
    """Opt-in tests run only when their marker is asked for with ``-m``."""
    asked = config.getoption("-m") or ""
    for item in items:
        for marker, why in OPT_IN.items():
            if marker in item.keywords and marker not in asked:
                item.add_marker(pytest.mark.skip(reason=f"opt-in: {why}"))
