"""The adapter's residual scale: its formula against a plain transcription, the plan's choice
from the data, what a fit applies, and what a saved model folder keeps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from contrastkit import Refiner
from contrastkit.config.defaults import (
    ADAPTER_PASSES_PER_CLASS_ROW,
    HARD_NEGATIVES_MIN_ROWS_PER_CLASS,
    RESIDUAL_SCALE,
    RESIDUAL_SCALE_DENSE,
    TEXT_VIEWS_MAX_EPOCHS,
    plan_training,
)
from contrastkit.config.refine_config import RefineConfig
from contrastkit.models.adapter import ResidualAdapter
from contrastkit.models.backbones import AdapterBackbone


@pytest.mark.parametrize("scale", [0.0, 0.25, 0.5, 1.0])
def test_scaled_adapter_is_the_base_plus_scale_times_the_residual(scale):
    torch.manual_seed(0)
    adapter = ResidualAdapter(6, 12).eval()
    torch.nn.init.normal_(adapter.mlp[-1].weight)  # away from the zero start
    x = torch.randn(5, 6)
    # plain transcription: u = x / |x|; y = u + s * W2 gelu(W1 u + b1) + s * b2
    u = x / x.norm(dim=1, keepdim=True)
    first, last = adapter.mlp[0], adapter.mlp[-1]
    hidden = torch.nn.functional.gelu(u @ first.weight.T + first.bias)
    expected = u + scale * (hidden @ last.weight.T + last.bias)
    adapter.scale = scale
    torch.testing.assert_close(adapter(x), expected)


@pytest.mark.parametrize(
    ("rows", "classes", "scale"),
    [(10_003, 77, RESIDUAL_SCALE_DENSE), (77 * HARD_NEGATIVES_MIN_ROWS_PER_CLASS, 77, RESIDUAL_SCALE_DENSE),
     (77 * HARD_NEGATIVES_MIN_ROWS_PER_CLASS - 1, 77, RESIDUAL_SCALE), (770, 77, RESIDUAL_SCALE),
     (385, 77, RESIDUAL_SCALE)],
)  # fmt: skip
def test_plan_scales_the_residual_by_how_many_rows_a_class_has(rows, classes, scale):
    assert plan_training(RefineConfig(), "text", "adapter", rows, classes).residual_scale == scale


def test_plan_leaves_the_residual_whole_without_labels_and_unscaled_outside_the_adapter():
    assert plan_training(RefineConfig(), "vectors", "adapter", 1000, None).residual_scale == 1.0
    assert plan_training(RefineConfig(), "text", "finetune", 770, 77).residual_scale is None
    config = RefineConfig(residual_scale=1.0)  # the user's value wins
    assert plan_training(config, "text", "adapter", 385, 77).residual_scale == 1.0


@pytest.mark.parametrize(("rows", "epochs"), [(385, 40), (770, 80), (2310, 240), (10_003, 150)])
def test_adapter_passes_are_bounded_by_the_rows_a_class_has(rows, epochs):
    plan = plan_training(RefineConfig(), "vectors", "adapter", rows, 77)
    assert plan.epochs == epochs
    assert plan.epochs <= max(5, ADAPTER_PASSES_PER_CLASS_ROW * rows / 77) or rows > 77 * 37
    assert plan_training(RefineConfig(epochs=300), "vectors", "adapter", rows, 77).epochs == 300
    one_view = plan_training(RefineConfig(views=1), "text", "adapter", rows, 77)
    assert one_view.epochs == epochs  # texts with one view a row: as vectors


@pytest.mark.parametrize(
    ("rows", "views", "epochs"),
    [(154, 5, 16), (385, 5, 40), (770, 5, 40), (2310, 5, 40), (10_003, 1, 150)],
)
def test_text_views_while_classes_are_sparse_and_then_at_most_40_epochs(rows, views, epochs):
    plan = plan_training(RefineConfig(), "text", "adapter", rows, 77)
    assert (plan.option_defaults["views"], plan.epochs) == (views, epochs)
    assert TEXT_VIEWS_MAX_EPOCHS == 40
    chosen = plan_training(RefineConfig(views=3), "text", "adapter", rows, 77)  # the user's
    unviewed = plan_training(RefineConfig(), "vectors", "adapter", rows, 77).epochs
    assert "views" not in chosen.option_defaults and chosen.epochs == min(unviewed, 40)
    assert (
        "views" not in plan_training(RefineConfig(), "text", "finetune", rows, 77).option_defaults
    )


def test_fit_applies_the_planned_scale_and_the_model_folder_keeps_it(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), 20)
    refiner = Refiner(seed=0, epochs=3, quiet=True).fit(X, y)
    assert refiner.plan_.residual_scale == RESIDUAL_SCALE
    assert refiner.backbone_.encoder.scale == RESIDUAL_SCALE
    Z = refiner.transform(X)
    refiner.save(tmp_path / "m")
    loaded = Refiner.load(tmp_path / "m")
    assert loaded.backbone_.encoder.scale == RESIDUAL_SCALE
    np.testing.assert_allclose(loaded.transform(X), Z, atol=1e-6)
    # a folder saved before the scale existed (no residual_scale) loads with the residual whole
    meta = json.loads((tmp_path / "m" / "contrastkit.json").read_text())["backbone"]
    assert meta.pop("residual_scale") == RESIDUAL_SCALE
    old = AdapterBackbone.load(tmp_path / "m", "vectors", meta, torch.device("cpu"))
    assert old.encoder.scale == 1.0


def test_scale_zero_gives_the_base_embeddings_back():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.repeat(np.arange(2), 20)
    refiner = Refiner(seed=0, epochs=2, quiet=True, residual_scale=0.0).fit(X, y)
    np.testing.assert_allclose(refiner.transform(X), refiner.base_transform(X), atol=1e-6)


def test_the_adapter_trains_at_scale_one_whatever_scale_it_is_used_at():
    """Scale 0 while training would leave the residual at its zero start (no gradient)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.repeat(np.arange(2), 20)
    refiner = Refiner(seed=0, epochs=2, quiet=True, residual_scale=0.0).fit(X, y)
    refiner.backbone_.encoder.scale = 1.0
    moved = np.abs(refiner.transform(X) - refiner.base_transform(X)).max()
    assert moved > 1e-3
