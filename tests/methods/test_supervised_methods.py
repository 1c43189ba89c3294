"""Supervised methods: option checking, the training modules, and every method on real data."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastkit import Refiner, losses
from contrastkit.errors import ConfigError
from contrastkit.methods.base import Batch
from contrastkit.methods.registry import METHODS, get_method
from contrastkit.methods.supervised import SUPERVISED_METHODS, CrossEntropy, SupervisedContrastive

ALL_SUPERVISED = ("supcon", "hscl", "triplet", "contrastive_pair", "logistic_pair", "npair", "ce")


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:320].astype(np.float32), y[:320]


def test_every_supervised_method_is_registered_and_needs_labels():
    assert set(ALL_SUPERVISED) <= set(SUPERVISED_METHODS)
    for name in ALL_SUPERVISED:
        assert METHODS[name].needs_labels, name


def test_unknown_method_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError, match="unknown method 'supcn'.*supcon"):
        get_method("supcn")
    with pytest.raises(ConfigError, match="supcn"):
        Refiner(method="supcn")


def test_an_option_of_another_loss_is_refused_with_the_methods_own_options():
    check = METHODS["supcon"].check_options
    with pytest.raises(ConfigError, match=r"'margin' is not an option of method supcon") as info:
        check({"margin": 0.3})
    assert "'temperature'" in str(info.value) and "'hardness'" in str(info.value)
    with pytest.raises(ConfigError, match="'margin'"):
        Refiner(method="supcon", margin=0.3)
    with pytest.raises(ConfigError, match="'temperature'"):
        Refiner(method="ce", temperature=0.1)
    assert METHODS["triplet"].check_options({"margin": 0.3}) == {"margin": 0.3}
    Refiner(method="triplet", margin=0.3, mining="semi_hard")  # accepted


def test_unknown_option_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="'temprature'.*did you mean 'temperature'"):
        Refiner(method="supcon", temprature=0.1)


def test_supervised_module_applies_the_loss_to_the_head_output():
    torch.manual_seed(0)
    encoder, head = nn.Linear(6, 5), nn.Linear(5, 3)
    module = SupervisedContrastive(encoder, head, "supcon", {"temperature": 0.2})
    x, y = torch.randn(10, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    expected = losses.supcon(head(encoder(x)), y, temperature=0.2)
    torch.testing.assert_close(module(Batch(x, y)), expected)


def test_two_augmented_views_both_carry_the_label():
    torch.manual_seed(0)
    encoder = nn.Linear(6, 4)
    seen = []

    def augment(x):
        seen.append(x)
        return x + 0.1 * len(seen)  # two different "views"

    module = SupervisedContrastive(encoder, nn.Identity(), "supcon", {"views": 2}, augment=augment)
    x, y = torch.randn(6, 6), torch.tensor([0, 0, 1, 1, 2, 2])
    views = torch.cat([x + 0.1, x + 0.2])
    expected = losses.supcon(encoder(views), torch.cat([y, y]))
    torch.testing.assert_close(module(Batch(x, y)), expected)
    assert "views" not in module.options  # the recipe's option never reaches the loss


def test_one_augmented_view_by_default():
    torch.manual_seed(0)
    encoder = nn.Linear(6, 4)
    module = SupervisedContrastive(encoder, nn.Identity(), "supcon", {}, augment=lambda x: x + 1)
    x, y = torch.randn(6, 6), torch.tensor([0, 0, 1, 1, 2, 2])
    torch.testing.assert_close(module(Batch(x, y)), losses.supcon(encoder(x + 1), y))


def test_views_is_checked_and_only_for_images_and_adapter_texts(digits):
    X, y = digits
    with pytest.raises(ConfigError, match="views"):
        Refiner(method="supcon", views=9)
    with pytest.raises(ConfigError, match="'views' is not an option of method ce"):
        Refiner(method="ce", views=2)
    with pytest.raises(ConfigError, match="'views' applies to images and texts.*vectors"):
        Refiner(method="supcon", views=2, epochs=1, quiet=True).fit(X, y)
    images, labels = np.zeros((8, 6, 6), np.float32), np.arange(8) % 2
    with pytest.raises(ConfigError, match="'views' for images is 1 or 2, got 3"):
        Refiner(method="supcon", views=3, epochs=1, quiet=True).fit(images, labels)
    with pytest.raises(ConfigError, match="'views' applies to texts in adapter mode only"):
        Refiner(mode="finetune", views=2, epochs=1, quiet=True).fit(["a b", "c d"], [0, 1])


def test_views_option_reaches_the_image_recipe(monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.random((64, 8, 8), dtype=np.float32)
    labels = np.repeat(np.arange(4), 16)
    original, rows = SupervisedContrastive.forward, []

    def recording(self, batch):
        rows.append((self.views, len(batch.inputs)))
        return original(self, batch)

    monkeypatch.setattr(SupervisedContrastive, "forward", recording)
    for views in (None, 2):
        rows.clear()
        options = {} if views is None else {"views": views}
        Refiner(method="supcon", epochs=1, batch_size=16, quiet=True, **options).fit(images, labels)
        assert rows and {v for v, _ in rows} == {views or 1}, rows


def test_npair_takes_the_first_two_rows_of_each_class():
    torch.manual_seed(0)
    module = SupervisedContrastive(nn.Identity(), nn.Identity(), "npair", {"l2_reg": 0.01})
    z = torch.randn(8, 4)
    y = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3])  # class 3 has no pair; class 0's third row unused
    expected = losses.npair(z[[0, 1, 3]], z[[2, 4, 6]], l2_reg=0.01)
    torch.testing.assert_close(module(Batch(z, y)), expected)


def test_npair_without_any_pair_gives_a_zero_loss_with_gradient():
    z = torch.randn(3, 4, requires_grad=True)
    module = SupervisedContrastive(nn.Identity(), nn.Identity(), "npair", {})
    loss = module(Batch(z, torch.tensor([0, 1, 2])))
    assert loss.item() == 0.0
    loss.backward()
    assert z.grad is not None


def test_cross_entropy_is_a_linear_classifier_on_the_embedding():
    torch.manual_seed(0)
    encoder = nn.Linear(6, 4)
    module = CrossEntropy(encoder, 4, 3)
    x, y = torch.randn(9, 6), torch.tensor([0, 1, 2] * 3)
    expected = F.cross_entropy(module.classifier(encoder(x)), y)
    torch.testing.assert_close(module(Batch(x, y)), expected)


@pytest.mark.parametrize("method", ALL_SUPERVISED)
def test_every_method_trains_on_digits(digits, method):
    X, y = digits
    refiner = Refiner(method=method, epochs=1, batch_size=64, seed=0, quiet=True).fit(X, y)
    Z = refiner.transform(X)
    assert Z.shape == (320, 64) and Z.dtype == np.float32
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    assert refiner.training_state_.step == 5 and refiner.training_state_.skipped_steps == 0
    # the adapter starts as the identity: training moved it
    assert np.abs(Z - refiner.base_transform(X)).max() > 1e-4


def _record_batch_labels(monkeypatch, cls) -> list[list[int]]:
    batches: list[list[int]] = []
    real_forward = cls.forward

    def forward(self, batch):
        batches.append(batch.labels.tolist())
        return real_forward(self, batch)

    monkeypatch.setattr(cls, "forward", forward)
    return batches


@pytest.mark.parametrize("method", ["supcon", "triplet", "npair"])
def test_supervised_batches_are_class_balanced(digits, monkeypatch, method):
    """Every anchor of every batch has a positive: each class in a batch has 2+ rows."""
    batches = _record_batch_labels(monkeypatch, SupervisedContrastive)
    X, y = digits
    Refiner(method=method, epochs=2, batch_size=40, m_per_class=4, quiet=True).fit(X, y)
    assert len(batches) == 2 * 8
    for labels in batches:
        counts = Counter(labels)
        assert len(labels) == 40
        assert min(counts.values()) >= 2, counts
        assert len(counts) >= 2  # and negatives


def test_cross_entropy_uses_plain_shuffled_batches(digits, monkeypatch):
    batches = _record_batch_labels(monkeypatch, CrossEntropy)
    X, y = digits
    Refiner(method="ce", epochs=1, batch_size=64, quiet=True).fit(X, y)
    seen = [label for labels in batches for label in labels]
    assert sorted(seen) == sorted(y.tolist())  # one pass over every row
