"""C3D (Tran et al., ICCV 2015): 8 convolutions, 5 max-pools, 2 fully connected layers.

conv1a 64 | pool1 1x2x2 | conv2a 128 | pool2 | conv3a,b 256 | pool3 | conv4a,b 512 | pool4 |
conv5a,b 512 | pool5 | fc6 4096 | fc7 4096 | classifier. Each conv is the strategy's unit (3x3x3 in
the original) followed by BN and ReLU (the BN variant, as VMZ trains it). pool5 uses ceil mode as
Caffe did, so a 16x112x112 clip gives 512x1x4x4 = 8192 features.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.models.units import make_unit, unit_stride

from ..strategy import Strategy
from .base import VideoModel

__all__ = ["C3D"]

_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
_POOL_AFTER = {0: (1, 2, 2), 1: (2, 2, 2), 3: (2, 2, 2), 5: (2, 2, 2), 7: (2, 2, 2)}


class C3D(VideoModel):
    def __init__(
        self,
        strategy: Strategy,
        *,
        num_classes: int = 101,
        width: float = 1.0,
        fc_dim: int = 4096,
        dropout: float = 0.5,
        num_frames: int = 16,
        size: int = 112,
    ) -> None:
        super().__init__()
        if strategy.layout.family != "c3d":
            raise ValueError(f"C3D needs a c3d backbone strategy, got {strategy.backbone!r}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.strategy = strategy
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        cin, t, s = 3, num_frames, size
        for i, (unit, c) in enumerate(zip(strategy.units, _CHANNELS)):
            cout = max(1, int(round(c * width)))
            ts, ss = unit_stride(unit, 1, 1)
            layers += [make_unit(unit, cin, cout, temporal_stride=ts, spatial_stride=ss), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]
            if i in _POOL_AFTER:
                k = _POOL_AFTER[i]
                if unit == "2D" and k[0] == 2:  # a 2D layer keeps time: pool space only
                    k = (1, 2, 2)
                layers.append(nn.MaxPool3d(k, k, ceil_mode=(i == 7)))
                t, s = -(-t // k[0]) if i == 7 else t // k[0], -(-s // k[1]) if i == 7 else s // k[1]
            cin = cout
        self.features = nn.Sequential(*layers)
        self._flat = cin * max(t, 1) * max(s, 1) ** 2
        self.input_frames, self.input_size = num_frames, size
        self.head = nn.Sequential(
            nn.Linear(self._flat, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.fc = nn.Linear(fc_dim, num_classes)
        self.feature_dim = fc_dim

    def layer_modules(self) -> list[tuple[str, nn.Module]]:
        from workbench.models.units import FusionUnit

        return [(f"features.{i}", m) for i, m in enumerate(self.features) if isinstance(m, FusionUnit)]

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The pool5 feature map, ``B C T' H' W'``."""
        return self.features(self._prepare(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_map(x).flatten(1)
        if x.shape[1] != self._flat:
            raise ValueError(
                f"C3D was built for {self.input_frames}x{self.input_size}x{self.input_size} clips "
                f"({self._flat} pool5 features) and got {x.shape[1]}; pass num_frames/size to create_model"
            )
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))
