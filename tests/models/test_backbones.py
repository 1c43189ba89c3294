"""Backbones for vectors and images: tensors, standardisation, baselines, save and load."""

from __future__ import annotations

import stat

import numpy as np
import pytest
import torch

from contrastkit.errors import DataError
from contrastkit.io.atomic import default_mode
from contrastkit.models.backbones import (
    AdapterBackbone,
    ImageBackbone,
    images_to_tensor,
    to_unit_range,
)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_images_to_tensor_moves_channels_first_and_keeps_uint8():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (4, 5, 6), dtype=np.uint8)
    t = images_to_tensor(gray)
    assert t.shape == (4, 1, 5, 6) and t.dtype == torch.uint8
    np.testing.assert_array_equal(t[:, 0].numpy(), gray)
    colour = rng.integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    t = images_to_tensor(colour)
    assert t.shape == (2, 3, 5, 6)
    np.testing.assert_array_equal(t.numpy(), colour.transpose(0, 3, 1, 2))


def test_to_unit_range_scales_uint8_only():
    assert to_unit_range(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [0.0, 1.0]
    assert to_unit_range(torch.tensor([0.5, 2.0])).tolist() == [0.5, 2.0]


@pytest.fixture(scope="module")
def colour_images() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)


def test_image_backbone_standardises_with_the_training_statistics(colour_images):
    backbone = ImageBackbone.for_training(colour_images, "cnn", torch.device("cpu"))
    pixels = colour_images.astype(np.float64) / 255.0
    np.testing.assert_allclose(
        backbone.encoder[0].mean.flatten().numpy(), pixels.mean(axis=(0, 1, 2)), rtol=1e-5
    )
    # torch.std is the unbiased one (ddof=1)
    np.testing.assert_allclose(
        backbone.encoder[0].std.flatten().numpy(), pixels.std(axis=(0, 1, 2), ddof=1), rtol=1e-4
    )
    assert backbone.shape == (3, 8, 8)


def test_image_base_embedding_is_standardised_pixels(colour_images):
    backbone = ImageBackbone.for_training(colour_images, "cnn", torch.device("cpu"))
    pixels = colour_images.astype(np.float64) / 255.0
    mean, std = pixels.mean(axis=(0, 1, 2)), pixels.std(axis=(0, 1, 2), ddof=1)
    expected = ((pixels - mean) / std).transpose(0, 3, 1, 2).reshape(len(pixels), -1)
    np.testing.assert_allclose(backbone.base_embed(colour_images), _unit_rows(expected), atol=1e-5)


def test_image_embeddings_are_unit_rows_and_wrong_sizes_are_refused(colour_images):
    backbone = ImageBackbone.for_training(colour_images, "cnn", torch.device("cpu"))
    Z = backbone.embed(colour_images)
    assert Z.shape == (20, 256) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    with pytest.raises(DataError, match=r"\(3, 8, 8\)"):
        backbone.embed(np.zeros((2, 9, 9, 3), np.uint8))


def test_vector_adapter_backbone_starts_as_the_base_embedding():
    X = np.random.default_rng(2).normal(size=(30, 16)).astype(np.float32)
    backbone = AdapterBackbone("vectors", 16, None, torch.device("cpu"))
    np.testing.assert_allclose(backbone.base_embed(X), _unit_rows(X), atol=1e-6)
    np.testing.assert_allclose(backbone.embed(X), _unit_rows(X), atol=1e-6)


def _perturb(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))


def test_adapter_backbone_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    X = np.random.default_rng(3).normal(size=(10, 8)).astype(np.float32)
    backbone = AdapterBackbone("vectors", 8, None, torch.device("cpu"), 24, 0.2, 0.1)
    _perturb(backbone.encoder)  # so that the round trip is not just the identity again
    meta = backbone.save(tmp_path)
    assert meta["hidden"] == 24 and meta["dropout"] == 0.2 and meta["input_dropout"] == 0.1
    loaded = AdapterBackbone.load(tmp_path, "vectors", meta, torch.device("cpu"))
    np.testing.assert_array_equal(loaded.embed(X), backbone.embed(X))


def test_image_backbone_save_load_round_trip(tmp_path, colour_images):
    torch.manual_seed(0)
    backbone = ImageBackbone.for_training(colour_images, "cnn", torch.device("cpu"))
    _perturb(backbone.encoder[1])
    meta = backbone.save(tmp_path)
    loaded = ImageBackbone.load(tmp_path, "images", meta, torch.device("cpu"))
    np.testing.assert_array_equal(loaded.embed(colour_images), backbone.embed(colour_images))


def test_saved_weights_get_the_usual_file_permissions(tmp_path, colour_images):
    """A model folder is shared with others: weights must not be private (0600) files."""
    AdapterBackbone("vectors", 8, None, torch.device("cpu")).save(tmp_path)
    mode = stat.S_IMODE((tmp_path / "adapter.safetensors").stat().st_mode)
    assert mode == default_mode()
