"""Refiner end to end on scikit-learn's digits: as 64-d vectors (adapter) and as 8x8 images
(a CNN fine-tuned from scratch). Small data and few epochs: seconds, not minutes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from contrastkit import Refiner, evaluate
from contrastkit.errors import ConfigError, DataError, UserError
from contrastkit.evaluation import knn_score
from contrastkit.models.manifest import ModelFolderError
from contrastkit.training.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    """(X_train, y_train, X_test, y_test): 1200 / 597 rows of 64 pixel intensities (0-16)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    return X[:1200], y[:1200], X[1200:], y[1200:]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y, _, _ = digits
    return Refiner(method="supcon", epochs=5, batch_size=128, seed=0, quiet=True).fit(X, y)


def _check_unit_float32(Z: np.ndarray, shape: tuple[int, int]) -> None:
    assert Z.shape == shape and Z.dtype == np.float32
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


def test_transform_gives_unit_float32_rows(fitted, digits):
    _, _, X_test, _ = digits
    _check_unit_float32(fitted.transform(X_test), (597, 64))
    assert (fitted.kind_, fitted.mode_) == ("vectors", "adapter")
    base = fitted.base_transform(X_test)
    np.testing.assert_allclose(
        base, X_test / np.linalg.norm(X_test, axis=1, keepdims=True), atol=1e-6
    )


def test_refinement_improves_retrieval_on_held_out_digits(fitted, digits):
    X, y, X_test, y_test = digits
    before = evaluate(fitted.base_transform(X), y, fitted.base_transform(X_test), y_test)
    after = evaluate(fitted.transform(X), y, fitted.transform(X_test), y_test)
    # raw pixels: MAP@R about 0.57; five epochs of supcon: about 0.64
    assert after["map_at_r"] > before["map_at_r"] + 0.03
    assert after["r_precision"] > before["r_precision"]


def test_lists_of_vectors_and_tensors_are_accepted(fitted, digits):
    X_test = digits[2][:5]
    expected = fitted.transform(X_test)
    np.testing.assert_array_equal(fitted.transform(X_test.tolist()), expected)
    np.testing.assert_array_equal(fitted.transform(torch.from_numpy(X_test)), expected)


def test_save_load_round_trip_and_no_pickle(fitted, digits, tmp_path, monkeypatch):
    X_test = digits[2]
    folder = fitted.save(tmp_path / "model")
    names = sorted(p.name for p in folder.rglob("*") if p.is_file())
    assert names == ["adapter.safetensors", "contrastkit.json"]
    for path in folder.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80")  # no pickle protocol header

    def refuse(*args, **kwargs):
        raise AssertionError("Refiner.load must never unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = Refiner.load(folder, device="cpu")
    np.testing.assert_array_equal(loaded.transform(X_test), fitted.transform(X_test))
    np.testing.assert_array_equal(loaded.base_transform(X_test), fitted.base_transform(X_test))
    assert loaded.classes_ == list(range(10))


def _flip_last_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: _flip_last_byte(f / "adapter.safetensors"), "altered"),
        (lambda f: (f / "adapter.safetensors").unlink(), "missing"),
        (lambda f: (f / "contrastkit.json").unlink(), "contrastkit.json"),
    ],
)
def test_load_refuses_a_damaged_folder(fitted, tmp_path, damage, message):
    folder = fitted.save(tmp_path / "model")
    damage(folder)
    with pytest.raises(ModelFolderError, match=message) as info:
        Refiner.load(folder)
    assert isinstance(info.value, UserError)


def test_supcon_on_dense_classes_trains_with_the_hardness_tilt(digits):
    """1200 digits in 10 classes (120 a class): the plan's hardness reaches the loss, so the
    default run is the explicit hardness=1 run, and not the plain SupCon one."""
    X, y = digits[0], digits[1]

    def run(**options) -> Refiner:
        return Refiner(epochs=1, batch_size=128, seed=0, quiet=True, **options).fit(X, y)

    default = run()
    assert default.plan_.option_defaults == {"hardness": 1.0}
    np.testing.assert_array_equal(default.transform(X), run(hardness=1.0).transform(X))
    plain = run(hardness=0.0)
    assert plain.plan_.option_defaults == {}
    assert np.abs(plain.transform(X) - default.transform(X)).max() > 1e-4


def test_same_seed_same_embeddings_other_seed_other_embeddings(digits):
    X, y = digits[0][:300], digits[1][:300]

    def run(seed: int) -> np.ndarray:
        return Refiner(epochs=2, batch_size=64, seed=seed, quiet=True).fit(X, y).transform(X)

    first = run(0)
    np.testing.assert_array_equal(run(0), first)
    assert np.abs(run(1) - first).max() > 1e-4


def test_an_interrupted_fit_resumes_to_the_same_model(digits, tmp_path, monkeypatch):
    X, y = digits[0][:300], digits[1][:300]

    def refiner() -> Refiner:
        return Refiner(epochs=4, batch_size=64, seed=0, quiet=True)

    expected = refiner().fit(X, y).transform(X)

    real_save = Trainer._save

    def save_then_die(self, epoch):
        real_save(self, epoch)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        refiner().fit(X, y, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.undo()
    resumed = refiner().fit(X, y, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert [row["epoch"] for row in resumed.history_] == [1, 2, 3, 4]
    np.testing.assert_array_equal(resumed.transform(X), expected)


def test_validation_data_drives_early_stopping_and_keeps_the_best_epoch(digits):
    X, y, X_val, y_val = digits[0][:600], digits[1][:600], digits[2][:300], digits[3][:300]
    refiner = Refiner(epochs=40, batch_size=128, patience=1, lr=3e-3, quiet=True)
    refiner.fit(X, y, validation=(X_val, y_val))
    history = refiner.history_
    assert all("val_score" in row for row in history)
    state = refiner.training_state_
    assert state.stopped_early and len(history) < 40
    best = max(row["val_score"] for row in history)
    assert state.best_score == best
    # the weights handed back are the best epoch's: recomputing its score gives it again
    score = knn_score(refiner.transform(X), y, refiner.transform(X_val), y_val)
    assert score == pytest.approx(best)


def test_string_labels_and_validation_labels_unseen_in_training(digits):
    X, y, X_val, y_val = digits[0][:300], digits[1][:300], digits[2][:100], digits[3][:100]
    words = "zero one two three four five six seven eight nine".split()
    names = np.array([words[i] for i in y])
    val_names = np.array(["unseen" if i == 9 else words[i] for i in y_val])
    refiner = Refiner(epochs=2, batch_size=64, quiet=True)
    refiner.fit(X, names, validation=(X_val, val_names))
    assert sorted(refiner.classes_) == sorted(set(names.tolist()))
    # rows of a class training never saw can never be matched: at most 90 % here
    assert 0.5 < refiner.history_[-1]["val_score"] <= np.mean(y_val != 9) + 1e-9


def test_val_fraction_holds_out_rows_for_validation(digits):
    X, y = digits[0][:300], digits[1][:300]
    refiner = Refiner(epochs=2, batch_size=64, val_fraction=0.2, quiet=True).fit(X, y)
    assert all("val_score" in row for row in refiner.history_)
    assert refiner.training_state_.step == 2 * int(np.ceil(240 / 64))


def test_small_data_warnings(digits):
    X, y = digits[0][:50], digits[1][:50].copy()
    with pytest.warns(UserWarning, match="larger than the 50 training rows"):
        refiner = Refiner(epochs=1, batch_size=512, quiet=True).fit(X, y)
    assert refiner.plan_.batch_size == 50
    y[0] = 99  # a class with one row has no positive pair
    with pytest.warns(UserWarning, match="single row"):
        Refiner(epochs=1, batch_size=16, quiet=True).fit(X, y)


def test_errors_a_user_can_cause(fitted, digits):
    X, y = digits[0][:50], digits[1][:50]
    with pytest.raises(ConfigError, match="not fitted"):
        Refiner().transform(X)
    with pytest.raises(DataError, match="fitted on vectors"):
        fitted.transform(["a text", "another"])
    with pytest.raises(DataError, match="needs labels"):
        Refiner(epochs=1, quiet=True).fit(X)
    with pytest.raises(ConfigError, match="vectors"):
        Refiner(mode="finetune", epochs=1, quiet=True).fit(X, y)
    with pytest.raises(DataError):
        Refiner(epochs=1, quiet=True).fit(X, y[:10])


# -- images ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digit_images(digits):
    """The digits as 8x8 uint8 images (intensities 0-16 scaled to 0-255)."""
    X, y, X_test, y_test = digits

    def to_images(a: np.ndarray) -> np.ndarray:
        return np.clip(a * 16, 0, 255).astype(np.uint8).reshape(-1, 8, 8)

    return to_images(X[:400]), y[:400], to_images(X_test[:100]), y_test[:100]


@pytest.fixture(scope="module")
def fitted_images(digit_images):
    X, y, _, _ = digit_images
    return Refiner(epochs=1, batch_size=100, seed=0, quiet=True).fit(X, y)


def test_images_finetune_a_cnn(fitted_images, digit_images):
    _, _, X_test, _ = digit_images
    assert (fitted_images.kind_, fitted_images.mode_) == ("images", "finetune")
    _check_unit_float32(fitted_images.transform(X_test), (100, 256))
    _check_unit_float32(fitted_images.base_transform(X_test), (100, 64))
    assert fitted_images.training_state_.step == 4


def test_image_model_round_trip(fitted_images, digit_images, tmp_path):
    _, _, X_test, _ = digit_images
    folder = fitted_images.save(tmp_path / "images")
    assert sorted(p.name for p in folder.iterdir()) == ["contrastkit.json", "encoder.safetensors"]
    loaded = Refiner.load(folder, device="cpu")
    np.testing.assert_array_equal(loaded.transform(X_test), fitted_images.transform(X_test))


def test_image_errors(fitted_images, digit_images):
    X, y, _, _ = digit_images
    with pytest.raises(DataError, match="resize"):
        fitted_images.transform(np.zeros((3, 9, 9), np.uint8))
    with pytest.raises(ConfigError, match="finetune"):
        Refiner(mode="adapter", epochs=1, quiet=True).fit(X, y)
