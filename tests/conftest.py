import os

import pytest

torch = pytest.importorskip("torch")

# Two cores: keep intra-op threads modest and results deterministic.
torch.set_num_threads(int(os.environ.get("WORKBENCH_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
