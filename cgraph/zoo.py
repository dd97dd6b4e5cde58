"""Small models covering the constructs a tracer must handle.

Each entry builds a model and an example input: residual additions (ResNet),
depthwise-separable inverted residuals with ReLU6 (MobileNetV2), concatenation
(DenseNet), attention written with matmul/softmax/layer norm/GELU and with
``nn.MultiheadAttention`` (transformer encoder), a model with no submodules
(purely functional), a module called twice, and data-dependent control flow
(which ``torch.fx`` cannot trace).  Tests, benchmarks and the proxies use them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list:
    conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(c_out)]


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv-BN, a 1×1 projection shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(c_in, c_out, 3, stride), nn.ReLU(), *_conv_bn(c_out, c_out, 3)
        )
        self.shortcut = (
            nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """A CIFAR ResNet: stem, ``len(widths)`` stages of ``blocks`` basic blocks, linear head."""

    def __init__(self, widths: tuple[int, ...] = (8, 16), blocks: int = 2, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, widths[0], 3), nn.ReLU())
        layers, c_in = [], widths[0]
        for i, width in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(c_in, width, 2 if i > 0 and b == 0 else 1))
                c_in = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand, 3×3 depthwise, 1×1 linear projection, skip if shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.use_skip = stride == 1 and c_in == c_out
        self.conv = nn.Sequential(
            *_conv_bn(c_in, hidden, 1),
            nn.ReLU6(),
            *_conv_bn(hidden, hidden, 3, stride, groups=hidden),
            nn.ReLU6(),
            *_conv_bn(hidden, c_out, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_skip else out


class MobileNetV2(nn.Module):
    """A small MobileNetV2: stem, inverted residual blocks, 1×1 conv, pooling, dropout, linear."""

    def __init__(self, classes: int = 10, expand: int = 4) -> None:
        super().__init__()
        settings = ((8, 8, 1), (8, 12, 2), (12, 12, 1))
        self.stem = nn.Sequential(*_conv_bn(3, 8, 3, 2), nn.ReLU6())
        self.blocks = nn.Sequential(*(InvertedResidual(i, o, s, expand) for i, o, s in settings))
        self.last = nn.Sequential(*_conv_bn(12, 32, 1), nn.ReLU6())
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.last(self.blocks(self.stem(x)))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


class DenseBlock(nn.Module):
    """DenseNet block: each layer (BN-ReLU-3×3 conv) reads the concatenation of all before it."""

    def __init__(self, c_in: int = 8, growth: int = 4, layers: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(c_in + i * growth),
                nn.ReLU(),
                nn.Conv2d(c_in + i * growth, growth, 3, padding=1, bias=False),
            )
            for i in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block with attention written out: q/k/v linears,
    ``matmul``, ``softmax``, ``matmul``, output linear, then a GELU MLP."""

    def __init__(self, dim: int = 16, heads: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.norm1(x)
        q, k, v = (
            f(h).view(b, n, self.heads, d // self.heads).transpose(1, 2)
            for f in (self.q, self.k, self.v)
        )
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        attended = torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(b, n, d)
        x = x + self.out(attended)
        return x + self.mlp(self.norm2(x))


class MHAEncoderBlock(nn.Module):
    """Post-norm transformer encoder block with ``nn.MultiheadAttention``."""

    def __init__(self, dim: int = 16, heads: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(x, x, x, need_weights=False)
        x = self.norm1(x + attended)
        return self.norm2(x + self.mlp(x))


class FunctionalNet(nn.Module):
    """No submodules: parameters used through ``F.conv2d``, ``F.relu``, ``F.linear``."""

    def __init__(self, channels: int = 6, classes: int = 10) -> None:
        super().__init__()
        self.conv_w = nn.Parameter(torch.randn(channels, 3, 3, 3) * 0.1)
        self.conv_b = nn.Parameter(torch.zeros(channels))
        self.fc_w = nn.Parameter(torch.randn(classes, channels) * 0.1)
        self.fc_b = nn.Parameter(torch.zeros(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.conv2d(x, self.conv_w, self.conv_b, stride=2, padding=1))
        x = F.max_pool2d(x, 2)
        return F.linear(x.mean(dim=(2, 3)), self.fc_w, self.fc_b)


class SharedBlockNet(nn.Module):
    """Calls one conv-BN-ReLU block twice (shared weights)."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.block = nn.Sequential(*_conv_bn(channels, channels, 3), nn.ReLU())
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.block(self.stem(x)))
        return self.head(x.mean((2, 3)))


class DataDependentNet(nn.Module):
    """Branches on the input's values, which ``torch.fx`` cannot trace symbolically."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum() > 0:
            return torch.relu(y)
        return torch.sigmoid(y)


@dataclass(frozen=True)
class ZooEntry:
    """A model factory and the input shape it expects."""

    factory: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    fx_traceable: bool = True


ZOO: dict[str, ZooEntry] = {
    "resnet": ZooEntry(ResNet, (2, 3, 32, 32)),
    "mobilenetv2": ZooEntry(MobileNetV2, (2, 3, 32, 32)),
    "densenet_block": ZooEntry(DenseBlock, (2, 8, 16, 16)),
    "transformer": ZooEntry(EncoderBlock, (2, 10, 16)),
    "transformer_mha": ZooEntry(MHAEncoderBlock, (2, 10, 16)),
    "functional": ZooEntry(FunctionalNet, (2, 3, 16, 16)),
    "shared_block": ZooEntry(SharedBlockNet, (2, 3, 16, 16)),
    "data_dependent": ZooEntry(DataDependentNet, (2, 3, 8, 8), fx_traceable=False),
}
"""Zoo models by name."""


def build(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The zoo model ``name`` and a standard-normal example input, both drawn from ``seed``."""
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r}; expected one of {', '.join(ZOO)}")
    entry = ZOO[name]
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = entry.factory()
    return model, torch.randn(entry.input_shape, generator=generator)
