"""`Refiner(method=...)` with self-supervised methods: no labels, errors, and exact resume."""

from __future__ import annotations

import numpy as np
import pytest
from ssl_fixtures import digit_images, digits

from contrastkit import Refiner
from contrastkit.errors import ConfigError, DataError
from contrastkit.training import trainer as trainer_module

UNLABELLED = ["simclr", "dcl", "hcl", "moco", "byol", "swav", "barlow_twins", "vicreg"]


def _vectors(n: int = 256) -> np.ndarray:
    return digits()[0][:n]


@pytest.mark.parametrize("method", UNLABELLED)
def test_fit_without_labels_on_vectors(method):
    X = _vectors()
    r = Refiner(method=method, epochs=1, batch_size=64, quiet=True).fit(X)
    Z = r.transform(X)
    assert Z.shape == (256, 64) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    assert r.kind_ == "vectors" and r.mode_ == "adapter"
    assert len(r.history_) == 1 and np.isfinite(r.history_[0]["loss"])


@pytest.mark.parametrize("method", ["simclr", "swav"])
def test_fit_without_labels_on_images(method):
    images = digit_images(64)
    r = Refiner(method=method, epochs=1, batch_size=32, quiet=True).fit(images)
    assert r.mode_ == "finetune"
    assert r.transform(images).shape == (64, r.backbone_.dim)


def test_labels_are_ignored_by_self_supervised_methods():
    X, y = digits()
    a = Refiner(method="simclr", epochs=1, batch_size=64, quiet=True).fit(X[:128]).transform(X[:8])
    b = Refiner(method="simclr", epochs=1, batch_size=64, quiet=True).fit(X[:128], y[:128])
    np.testing.assert_array_equal(a, b.transform(X[:8]))


def test_a_supervised_method_without_labels_says_so():
    with pytest.raises(DataError, match="method supcon is supervised and needs labels"):
        Refiner(method="supcon", epochs=1, quiet=True).fit(_vectors(32))


@pytest.mark.parametrize(
    "method,options,X,error,match",
    [
        ("simcse", {}, "vectors", DataError, "method simcse takes text, but was given vectors"),
        ("clip", {}, "texts", DataError, r"method clip takes \(a, b\) text pairs"),
        ("simclr", {}, "pairs", DataError, "pairs of texts are for paired methods"),
        ("simclr", {"text_augment": "delete"}, "texts", ConfigError, "needs mode finetune"),
        ("simclr", {"text_augment": "dropout"}, "vectors", ConfigError, "applies to text"),
        ("swav", {"local_crops": 2}, "vectors", ConfigError, "applies to images"),
        ("byol", {"mode": "finetune"}, "vectors", ConfigError, "mode finetune does not apply"),
    ],
)
def test_bad_combinations_are_refused_before_any_work(method, options, X, error, match):
    data = {
        "vectors": _vectors(8),
        "texts": ["a b c", "d e f", "g h i"],
        "pairs": [("a b", "c d"), ("e f", "g h")],
    }[X]
    with pytest.raises(error, match=match):
        Refiner(method=method, epochs=1, quiet=True, **options).fit(data)


def test_unknown_recipe_option_is_refused_at_construction():
    with pytest.raises(ConfigError, match="'queue_size' is not an option of method byol"):
        Refiner(method="byol", queue_size=10)


@pytest.mark.parametrize("method", ["moco", "byol", "swav"])
def test_resume_continues_exactly(method, tmp_path, monkeypatch):
    X = _vectors(192)
    options = dict(method=method, epochs=3, batch_size=64, quiet=True)
    if method == "moco":
        options["queue_size"] = 96  # wraps within the run: the saved pointer matters
    straight = Refiner(**options).fit(X, checkpoint_dir=tmp_path / "a").transform(X)

    original = trainer_module.Trainer._end_epoch

    def stop_after_first_epoch(self, epoch, *args, **kwargs):
        original(self, epoch, *args, **kwargs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module.Trainer, "_end_epoch", stop_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        Refiner(**options).fit(X, checkpoint_dir=tmp_path / "b")
    monkeypatch.setattr(trainer_module.Trainer, "_end_epoch", original)
    resumed = Refiner(**options).fit(X, checkpoint_dir=tmp_path / "b", resume=True)
    np.testing.assert_array_equal(resumed.transform(X), straight)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]


def test_save_and_load_round_trip(tmp_path):
    X = _vectors(128)
    r = Refiner(method="byol", epochs=1, batch_size=64, quiet=True).fit(X)
    loaded = Refiner.load(r.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.transform(X[:5]), r.transform(X[:5]))
    assert loaded.config.method == "byol"
