import os

import pytest

torch = pytest.importorskip("torch")

# Two cores: keep intra-op threads modest and results deterministic.
torch.set_num_threads(int(os.environ.get("WORKBENCH_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


OPT_IN = {"faults": "real kill -9 loops; run with `pytest -m faults`"}


def pytest_collection_modifyitems(config, items):
    """Opt-in tests run only when their marker is asked for with ``-m``."""
    asked = config.getoption("-m") or ""
    for item in items:
        for marker, why in OPT_IN.items():
            if marker in item.keywords and marker not in asked:
                item.add_marker(pytest.mark.skip(reason=f"opt-in: {why}"))
