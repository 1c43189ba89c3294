"""The trainable parts: the residual adapter, the projection head and the image encoders."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit.models.adapter import ResidualAdapter
from contrastkit.models.heads import ProjectionHead
from contrastkit.models.vision import ResNet18, SmallCNN, build_image_encoder


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("training", [True, False])
def test_adapter_is_the_normalised_identity_at_init(training):
    torch.manual_seed(0)
    x = 5.0 * torch.randn(16, 32) + 1.0  # not unit length: the adapter normalises first
    adapter = ResidualAdapter(32).train(training)
    out = adapter(x)
    # The last layer starts at zero, so dropout or not, the output is exactly normalise(x).
    expected = x / x.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert adapter.mlp[0].out_features == 4 * 32  # default hidden width


def test_adapter_learns_away_from_the_identity():
    torch.manual_seed(0)
    x = torch.randn(8, 12)
    adapter = ResidualAdapter(12, hidden_dim=20, dropout=0.0, input_dropout=0.0)
    opt = torch.optim.SGD(adapter.parameters(), lr=0.5)
    target = torch.randn(8, 12)
    for _ in range(3):
        opt.zero_grad()
        F.mse_loss(adapter(x), target).backward()
        opt.step()
    assert adapter.mlp[-1].weight.abs().sum() > 0  # the zero layer receives gradient
    assert not torch.allclose(adapter(x), F.normalize(x, dim=1))


def test_projection_head_shapes_and_default_hidden_width():
    head = ProjectionHead(48, out_dim=16)
    assert head(torch.randn(5, 48)).shape == (5, 16)
    assert head.net[0].out_features == 48
    assert ProjectionHead(48, 16, hidden_dim=7).net[0].out_features == 7


@pytest.mark.parametrize(
    ("channels", "size", "width", "dim"), [(1, 8, 32, 256), (3, 32, 32, 256), (1, 28, 8, 64)]
)
def test_small_cnn_output_shape(channels, size, width, dim):
    net = SmallCNN(in_channels=channels, width=width, dim=dim).eval()
    with torch.no_grad():
        out = net(torch.randn(3, channels, size, size))
    assert out.shape == (3, dim)
    assert net.dim == dim


def test_small_cnn_has_about_0_3m_parameters():
    # 3x3 conv weights 1*32+32*32+32*64+64*64+64*128+128*128 times 9, plus BN and the 128->256
    # projection: a transcription of the documented architecture.
    convs = 9 * (1 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128)
    batch_norm = 2 * (32 + 32 + 64 + 64 + 128 + 128)
    assert _n_params(SmallCNN(1)) == convs + batch_norm + 128 * 256 + 256


@pytest.mark.parametrize(("channels", "size"), [(3, 32), (1, 8)])
def test_resnet18_output_shape(channels, size):
    net = ResNet18(in_channels=channels).eval()
    with torch.no_grad():
        out = net(torch.randn(2, channels, size, size))
    assert out.shape == (2, 512)
    assert net.dim == 512


def test_resnet18_has_the_cifar_resnet18_parameter_count():
    # The CIFAR ResNet-18 (3x3 stem, no max-pool) has 11,173,962 parameters with its 10-class
    # fc layer (512*10 + 10 = 5,130); without it: 11,168,832.
    assert _n_params(ResNet18(in_channels=3)) == 11_173_962 - 5_130


def test_build_image_encoder_by_name():
    assert isinstance(build_image_encoder("cnn", 3), SmallCNN)
    assert isinstance(build_image_encoder("resnet18", 1), ResNet18)
    assert build_image_encoder("cnn", 3).features[0][0].in_channels == 3
