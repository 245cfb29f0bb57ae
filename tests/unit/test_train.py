import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from workbench.engine.loop import TrainConfig, evaluate, train
from workbench.models import build_model


class _Fixed(nn.Module):
    """Returns preset logits per example index (carried in the clip's first value)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[x[:, 0, 0, 0, 0].long()]


class _Views(Dataset):
    def __init__(self, n_videos, views):
        self.items = [(v, i) for v in range(n_videos) for i in range(views)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, j):
        v, _ = self.items[j]
        return torch.full((3, 1, 1, 1), float(j)), v % 2, v


def test_evaluate_averages_views_per_video():
    ds = _Views(n_videos=2, views=3)
    # video 0 (label 0): views favour 1, 1, then 0 strongly -> average favours 0
    logits = torch.tensor([[0.0, 1.0], [0.0, 1.0], [9.0, 0.0], [0.0, 5.0], [0.0, 5.0], [5.0, 0.0]])
    r = evaluate(_Fixed(logits), DataLoader(ds, batch_size=4))
    assert r["n"] == 2 and r["views"] == 6
    assert r["top1"] == 1.0


def test_evaluate_plain_and_errors():
    x = torch.zeros(4, 3, 1, 1, 1)
    x[:, 0, 0, 0, 0] = torch.arange(4).float()
    ds = TensorDataset(x, torch.tensor([0, 1, 1, 0]))
    logits = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    r = evaluate(_Fixed(logits), DataLoader(ds, batch_size=3))
    assert r["top1"] == 0.75 and r["top5"] == 1.0 and r["n"] == 4
    with pytest.raises(ValueError, match="no examples"):
        evaluate(_Fixed(logits), DataLoader(TensorDataset(x[:0], torch.tensor([]).long())))


def test_train_config_validation():
    with pytest.raises(ValueError, match="warmup_epochs must lie in 0..epochs"):
        TrainConfig(epochs=2, warmup_epochs=3)
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="unknown schedule"):
        TrainConfig(schedule="linear")
    assert TrainConfig.from_dict(TrainConfig(milestones=(2, 4)).to_dict()) == TrainConfig(milestones=(2, 4))


def test_standalone_training_learns_and_resume_refuses_other_config(tmp_path):
    torch.manual_seed(0)
    # separable toy clips: the class is the sign of the mean
    y = torch.randint(0, 2, (32,))
    x = torch.randn(32, 3, 4, 32, 32) * 0.1 + (y.float() * 2 - 1).view(-1, 1, 1, 1, 1)
    ds = TensorDataset(x, y)
    model = build_model("f-r2d", backbone="resnet10", tiny=True, num_classes=2)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=3e-3, progress=False, schedule="step", milestones=(2,))
    h = train(model, ds, ds, cfg, out_dir=tmp_path)
    assert h.val_acc[-1] == 1.0 and h.lr == [3e-3, 3e-3, pytest.approx(3e-4)]
    with pytest.raises(ValueError, match="training configuration differs"):
        train(model, ds, ds, TrainConfig(epochs=4, batch_size=8, progress=False), out_dir=tmp_path, resume=True)


def test_the_loop_refuses_what_it_cannot_do_right(clips12):
    """A template trained from raw batches needs the N of its regulariser; raw batches are not
    sharded, so they are refused under data parallelism (the single-process case is checked)."""
    from workbench.engine.loop import Loop
    from workbench.template.network import TemplateNetwork

    net = TemplateNetwork(num_classes=3, growth=4, bn_size=2)
    cfg = TrainConfig(epochs=1, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="needs config.n_train"):
        Loop(net, None, None, cfg, batches=lambda e: []).run()
